-- mem_lib.lua: helpers of the vector-memory scripts (package memory). Not a
-- script of its own: scripts that name it in an "Include:" header line get it
-- prepended, after lib_base.lua.
--
-- Keys of one memory tag share the beginning base = "<prefix>:{mem:<root>}:"
-- (see internal/keys.Memory): records "<base>r:<id>", scope indexes
-- "<base>sx:<scope>" (zset id -> created ms), vector sets "<base>vs:<scope>",
-- the scope counts hash, the expiry zset ("<scope>\n<id>" -> expiry ms) and
-- the TTL hash (id -> scope of a record put with a TTL, kept until its
-- entries are swept, so that the scope of a record whose hash expired is
-- still known).
--
-- The key rule: scripts build record, scope-index and vector-set keys from
-- base (they have the tag of the declared keys, so they lie in their slot),
-- and every such key a script writes is read first (TYPE, HGET, EXISTS),
-- before the script's first write. In a Cluster slot that is being
-- migrated, a key already moved to the other node makes that read fail
-- ("non local key"), so the script stops before it has changed anything.
-- The reads are done by the *_plan helpers; the writes they plan by
-- mem_apply.

-- MEM_SWEEP bounds the expiry entries one call examines. Every entry it
-- examines leaves the due range (removed, or moved to its record's real
-- expiry), so the sweep advances whatever the backlog.
local MEM_SWEEP = 1000

-- mem_type returns nil when key k holds type t or nothing, else an error
-- reply FENCEKIT_CORRUPT <k>.
local function mem_type(k, t)
  local got = redis.call('TYPE', k)
  if type(got) == 'table' then got = got.ok end
  if got ~= t and got ~= 'none' then return redis.error_reply('FENCEKIT_CORRUPT ' .. k) end
  return nil
end

-- mem_fixed checks the types of the tag's fixed keys: meta hash (and its
-- epoch field), expiry zset, scope counts hash, TTL hash (metak may be nil).
-- It returns an error reply or nil.
local function mem_fixed(metak, expk, scopesk, ttlk)
  for _, kt in ipairs({{expk, 'zset'}, {scopesk, 'hash'}, {ttlk, 'hash'}, {metak, 'hash'}}) do
    if kt[1] then
      local e = mem_type(kt[1], kt[2])
      if e then return e end
    end
  end
  if metak then
    local ep = redis.call('HGET', metak, 'ep')
    if ep and not string.match(ep, '^%d+$') then return redis.error_reply('FENCEKIT_CORRUPT ' .. metak .. ' ep') end
  end
  return nil
end

-- A plan holds the net effect of a script on the tag's keys, built while
-- the script reads (the *_plan helpers read every key they plan to write)
-- and applied by mem_apply. It records final states, not steps: an index
-- entry removed and added again by the same call is just kept. In a
-- Cluster slot being migrated a key that does not exist on the node cannot
-- be written, also when the script itself emptied it a moment before (an
-- emptied zset or hash is deleted); so mem_apply writes records in place
-- (no DEL before a re-put) and runs every addition before any removal, and
-- a key is only emptied when it ends empty.
--
--   p.recs[id]    = record to write (a table with field put), or false: DEL
--   p.sx[scope][id] = created ms (the id is in the scope's index), or false
--   p.exp[member] = expiry ms, or false
--   p.ttl[id]     = scope (TTL hash entry), or false
--   p.vrem[scope .. '\n' .. id] = {scope, id}: VREM (vq), unless p.keepvs has it

-- mem_new_plan returns an empty plan.
local function mem_new_plan(base, expk, scopesk, ttlk, vq)
  return {base = base, expk = expk, scopesk = scopesk, ttlk = ttlk, vq = vq, checked = {},
    recs = {}, rec_order = {}, sx = {}, sx_order = {}, exp = {}, exp_order = {}, ttl = {}, ttl_order = {},
    vrem = {}, vrem_order = {}, keepvs = {}}
end

-- mem_set records the final state v of entry k in table t of plan p,
-- remembering the first time k was planned in order (deterministic apply).
local function mem_set(t, order, k, v)
  if t[k] == nil then order[#order + 1] = k end
  t[k] = v
end

-- mem_scope_check reads the keys of scope that unindexing or indexing a
-- record touches: the scope index (a zset), its count (an integer), its
-- vector set (with vq). It returns an error reply or nil.
local function mem_scope_check(p, scope)
  if p.checked[scope] then return nil end
  local e = mem_type(p.base .. 'sx:' .. scope, 'zset')
  if e then return e end
  local c = redis.call('HGET', p.scopesk, scope)
  if c and not string.match(c, '^%-?%d+$') then
    return redis.error_reply('FENCEKIT_CORRUPT ' .. p.scopesk .. ' ' .. scope)
  end
  if p.vq ~= '' then redis.call('EXISTS', p.base .. 'vs:' .. scope) end
  p.checked[scope] = true
  p.sx[scope] = {}
  p.sx_order[#p.sx_order + 1] = scope
  return nil
end

-- mem_sx_set plans id in (ts) or out of (false) the index of a checked scope.
local function mem_sx_set(p, scope, id, ts)
  local t = p.sx[scope]
  if t[id] == nil then t[#t + 1] = id end
  t[id] = ts
end

-- mem_unindex_plan plans removing record id from the index of scope (its
-- count decremented when it was there, and with vq its vector set).
local function mem_unindex_plan(p, scope, id)
  local e = mem_scope_check(p, scope)
  if e then return e end
  mem_sx_set(p, scope, id, false)
  mem_set(p.vrem, p.vrem_order, scope .. '\n' .. id, {scope, id})
  return nil
end

-- mem_where returns the scope record id is indexed in and whether its hash
-- exists: the hash's scope field, or the TTL hash's entry of a record whose
-- hash expired (nil when neither). A record key of another type fails
-- with WRONGTYPE (a read, before any write).
local function mem_where(p, id)
  local s = redis.call('HGET', p.base .. 'r:' .. id, 'scope')
  if s then return s, true end
  return redis.call('HGET', p.ttlk, id), false
end

-- mem_sweep_plan examines up to MEM_SWEEP due entries of the expiry index
-- and plans, for each: a record that is gone loses every index entry of
-- that scope; an entry of a scope the record no longer lives in (a ghost of
-- an earlier life) is removed with the record's id in that scope's index;
-- an entry of a live record is moved to the record's real expiry (or
-- removed when the record has no TTL any more). It returns an error reply
-- or nil.
local function mem_sweep_plan(p, now_ms)
  local due = redis.call('ZRANGEBYSCORE', p.expk, '-inf', fk_fmt(now_ms), 'LIMIT', 0, MEM_SWEEP)
  for _, m in ipairs(due) do
    local scope, id = string.match(m, '^(.-)\n(.+)$')
    if not scope or scope == '' then
      mem_set(p.exp, p.exp_order, m, false)
    else
      local rk = p.base .. 'r:' .. id
      local t = redis.call('TYPE', rk)
      if type(t) == 'table' then t = t.ok end
      if t == 'hash' then
        local cur = redis.call('HGET', rk, 'scope')
        if cur == scope then
          local pttl = redis.call('PTTL', rk)
          if pttl == -1 then -- put again without a TTL
            mem_set(p.exp, p.exp_order, m, false)
          else -- expires in pttl ms (0: at this very ms)
            mem_set(p.exp, p.exp_order, m, now_ms + math.max(pttl, 1))
          end
        else
          local e = mem_unindex_plan(p, scope, id)
          if e then return e end
          mem_set(p.exp, p.exp_order, m, false)
        end
      elseif t == 'none' then
        local e = mem_unindex_plan(p, scope, id)
        if e then return e end
        mem_set(p.exp, p.exp_order, m, false)
        if redis.call('HGET', p.ttlk, id) == scope then mem_set(p.ttl, p.ttl_order, id, false) end
      else
        mem_set(p.exp, p.exp_order, m, false) -- not a record fencekit wrote: leave it alone
      end
    end
  end
  return nil, #due == MEM_SWEEP
end

-- mem_drop_plan plans deleting record id (live or expired) of scope: its
-- index entries, expiry entry, TTL entry and hash.
local function mem_drop_plan(p, scope, id)
  local e = mem_unindex_plan(p, scope, id)
  if e then return e end
  mem_set(p.exp, p.exp_order, scope .. '\n' .. id, false)
  mem_set(p.ttl, p.ttl_order, id, false)
  mem_set(p.recs, p.rec_order, id, false)
  return nil
end

-- mem_apply runs the writes of plan p: records, then every addition, then
-- every removal (see the plan above). Only writes from here on. A record
-- to write is a table {put = function(rk) ... end}.
local function mem_apply(p)
  for _, id in ipairs(p.rec_order) do
    local r = p.recs[id]
    if r then r.put() else redis.call('DEL', p.base .. 'r:' .. id) end
  end
  for _, scope in ipairs(p.sx_order) do
    local t, sk = p.sx[scope], p.base .. 'sx:' .. scope
    for _, id in ipairs(t) do
      if t[id] and redis.call('ZADD', sk, fk_fmt(t[id]), id) == 1 then
        redis.call('HINCRBY', p.scopesk, scope, 1)
      end
    end
  end
  for _, m in ipairs(p.exp_order) do
    if p.exp[m] then redis.call('ZADD', p.expk, fk_fmt(p.exp[m]), m) end
  end
  for _, id in ipairs(p.ttl_order) do
    if p.ttl[id] then redis.call('HSET', p.ttlk, id, p.ttl[id]) end
  end
  for _, scope in ipairs(p.sx_order) do
    local t, sk = p.sx[scope], p.base .. 'sx:' .. scope
    for _, id in ipairs(t) do
      if t[id] == false and redis.call('ZREM', sk, id) == 1 then
        if redis.call('HINCRBY', p.scopesk, scope, -1) <= 0 then redis.call('HDEL', p.scopesk, scope) end
      end
    end
  end
  for _, m in ipairs(p.exp_order) do
    if p.exp[m] == false then redis.call('ZREM', p.expk, m) end
  end
  for _, id in ipairs(p.ttl_order) do
    if p.ttl[id] == false then redis.call('HDEL', p.ttlk, id) end
  end
  if p.vq ~= '' then
    for _, k in ipairs(p.vrem_order) do
      local v = p.vrem[k]
      if not p.keepvs[k] then redis.call('VREM', p.base .. 'vs:' .. v[1], v[2]) end
    end
  end
end

-- mem_within reports whether scope s is scope p or one of its descendants.
local function mem_within(s, p)
  return s == p or string.sub(s, 1, #p + 1) == p .. '/'
end

-- mem_vq checks the vector-set flag argument: "" (no vector sets) or the
-- quantisation flag every VADD of the store passes. It returns the flag, or
-- nil and an error reply.
local function mem_vq(v)
  if v == '' or v == 'NOQUANT' or v == 'Q8' or v == 'BIN' then return v end
  return nil, redis.error_reply('FENCEKIT_BADARG vset flag')
end

-- mem_fence checks an optional token (ARGV[1], "" for an unfenced write)
-- with fk_check against the lock named after the tag; KEYS[1..3] are the
-- lock record, the lock fence and the tag's meta hash. It returns the
-- token ('' when unfenced) or nil and an error reply.
local function mem_fence(tok, mode)
  if tok == '' then return '' end
  local t, e = fk_check(KEYS[1], KEYS[2], KEYS[3], tok, mode)
  if not t then return nil, e end
  return tok
end

-- mem_bump increments the tag's write epoch (field ep of the meta hash),
-- which searches compare with their client-side cache (see package memory).
local function mem_bump(metak)
  redis.call('HINCRBY', metak, 'ep', 1)
end
