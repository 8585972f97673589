-- mem_lib.lua: helpers of the vector-memory scripts (package memory). Not a
-- script of its own: scripts that name it in an "Include:" header line get it
-- prepended, after lib_base.lua.
--
-- Keys of one memory tag share the beginning base = "<prefix>:{mem:<root>}:"
-- (see internal/keys.Memory): records "<base>r:<id>", scope indexes
-- "<base>sx:<scope>" (zset id -> created ms), the scope counts hash and the
-- expiry zset ("<scope>\n<id>" -> expiry ms). Scripts derive record and
-- index keys from base; every such key has the tag of the declared keys, so
-- it lies in their slot.

-- mem_unindex removes record id from the index of scope and decrements the
-- scope's count (dropping it at zero). vq is the vector-set flag of the
-- write ("" when the store keeps no vector sets): when set, id also leaves
-- the scope's vector set "<base>vs:<scope>" (VREM; Redis 8 vector sets).
local function mem_unindex(base, scopesk, scope, id, vq)
  if redis.call('ZREM', base .. 'sx:' .. scope, id) == 1 then
    if redis.call('HINCRBY', scopesk, scope, -1) <= 0 then redis.call('HDEL', scopesk, scope) end
  end
  if vq ~= '' then redis.call('VREM', base .. 'vs:' .. scope, id) end
end

-- mem_sweep drops the index entries (and, with vq, the vector-set entries)
-- of records whose TTL ran out (at most 1000 per call; the rest on later
-- calls).
local function mem_sweep(base, expk, scopesk, now_ms, vq)
  local due = redis.call('ZRANGEBYSCORE', expk, '-inf', fk_fmt(now_ms), 'LIMIT', 0, 1000)
  for _, m in ipairs(due) do
    local scope, id = string.match(m, '^(.-)\n(.*)$')
    if not scope then
      redis.call('ZREM', expk, m)
    elseif redis.call('EXISTS', base .. 'r:' .. id) == 0 then
      mem_unindex(base, scopesk, scope, id, vq)
      redis.call('ZREM', expk, m)
    end
  end
end

-- mem_within reports whether scope s is scope p or one of its descendants.
local function mem_within(s, p)
  return s == p or string.sub(s, 1, #p + 1) == p .. '/'
end

-- mem_drop deletes record id (of scope) with its index entries (vq: see
-- mem_unindex).
local function mem_drop(base, expk, scopesk, scope, id, vq)
  mem_unindex(base, scopesk, scope, id, vq)
  redis.call('ZREM', expk, scope .. '\n' .. id)
  redis.call('DEL', base .. 'r:' .. id)
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
