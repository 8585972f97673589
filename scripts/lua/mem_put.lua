-- mem_put.lua: store a batch of memory records of one tag, atomically
-- (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (fields fence, vq, ep), KEYS[4] expiry zset, KEYS[5] scope
-- counts hash, KEYS[6] TTL hash (id -> scope of records with a TTL),
-- then per record i (from 0): KEYS[7+2i] record hash "<base>r:<id>",
-- KEYS[8+2i] scope index "<base>sx:<scope>"
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:",
-- ARGV[4] vector-set flag: "" (no vector sets) or the quantisation flag
-- "NOQUANT"|"Q8"|"BIN" of every VADD (vset backend),
-- then 11 arguments per record from ARGV[5]: id, scope, text, vec (LE float32
-- blob), cats, sc, sh, meta, imp, created ms ("" = server time), ttl ms ("0" = none)
--
-- A record replaces the record with the same id in the tag (moving it to
-- its new scope): every index entry of the previous record with that id
-- goes, also when its hash already expired (its scope is then read from
-- the TTL hash). Records with a ttl expire with their hash; their index
-- entries are swept by the next write or stats call (mem_lib.lua). With a
-- vector-set flag every record is also added to its scope's vector set
-- "<base>vs:<scope>" (VADD key FP32 vec id <flag> SETATTR
-- {"imp":..,"ts":..[,"cats":[..]]}) and removed from the set of the scope
-- it leaves; the VADDs (one per id: the last record of the batch with it)
-- run before the other writes, after a VDIM check of existing sets. Every
-- key the script writes besides the declared ones (the index, count and
-- vector set of a scope a record leaves, the keys of swept entries) is read
-- before the first write. The meta hash's field ep (the tag's write epoch)
-- is incremented. The meta hash's field vq
-- records the flag the tag's vector sets are created with (set by the
-- first Put that adds to one); a flag that differs is refused before any
-- write, since VADD would fail only at the first set of the other
-- quantisation, after the VADDs of earlier records.
--
-- Reply: {created ms of each record}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_CORRUPT <key> (a fixed key, scope index or count of
--         another type); FENCEKIT_BADARG <arg> (also "vset quantisation
--         <flag>: the tag's vector sets use <vq>"); WRONGTYPE (a record
--         key); a Cluster "non local key" error (a key moved by a slot
--         migration). All before the first write.
--         A VADD error can still come after the sweep of expired entries and
--         the VADDs of earlier records for vector sets made by other means
--         (or by a fencekit version that did not record vq).
-- Retryable: no. (Replaying it is harmless for the data, but a retry of a
-- fenced write after the lease passed would be refused and mislead.)
-- Include: lib_base.lua
-- Include: lib_fence.lua
-- Include: mem_lib.lua

local tok, e1 = mem_fence(ARGV[1], ARGV[2])
if not tok then return e1 end
local base = ARGV[3]
local vq, e2 = mem_vq(ARGV[4])
if not vq then return e2 end
local e3 = mem_fixed(KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if e3 then return e3 end
local vq_had = false
if vq ~= '' then
  local had = redis.call('HGET', KEYS[3], 'vq')
  if had and had ~= vq then
    return redis.error_reply('FENCEKIT_BADARG vset quantisation ' .. vq .. ": the tag's vector sets use " .. had)
  end
  vq_had = had and true or false
end
local nargs = 11
local n = (#ARGV - 4) / nargs
if n < 1 or n ~= math.floor(n) or #KEYS ~= 6 + 2 * n then return redis.error_reply('FENCEKIT_BADARG count') end
local _, now_ms = fk_now()
local p = mem_new_plan(base, KEYS[4], KEYS[5], KEYS[6], vq)
local e4 = mem_sweep_plan(p, now_ms)
if e4 then return e4 end
local recs, where, last = {}, {}, {}
for i = 0, n - 1 do
  local a = 5 + nargs * i
  local r = {id = ARGV[a], scope = ARGV[a + 1], rk = KEYS[7 + 2 * i], sk = KEYS[8 + 2 * i], a = a}
  if r.id == '' or r.rk ~= base .. 'r:' .. r.id then return redis.error_reply('FENCEKIT_BADARG record key') end
  if r.scope == '' or r.sk ~= base .. 'sx:' .. r.scope then return redis.error_reply('FENCEKIT_BADARG scope key') end
  if ARGV[a + 9] == '' then
    r.ts = now_ms
  else
    local ts, e = fk_int(ARGV[a + 9], 'created')
    if not ts then return e end
    r.ts = ts
  end
  local ttl, e = fk_int(ARGV[a + 10], 'ttl')
  if not ttl then return e end
  r.ttl = ttl
  if not tonumber(ARGV[a + 8]) then return redis.error_reply('FENCEKIT_BADARG importance') end
  -- The scope the id lives in before this record: as left by an earlier
  -- record of the batch, else as stored (false: nowhere).
  local old = where[r.id]
  if old == nil then old = mem_where(p, r.id) or false end
  if old then
    local e5 = mem_drop_plan(p, old, r.id)
    if e5 then return e5 end
  end
  local e6 = mem_scope_check(p, r.scope)
  if e6 then return e6 end
  if vq ~= '' then
    local vk = base .. 'vs:' .. r.scope
    if redis.call('EXISTS', vk) == 1 and redis.call('VDIM', vk) * 4 ~= #ARGV[a + 3] then
      return redis.error_reply('FENCEKIT_BADARG vector set dimension')
    end
  end
  where[r.id] = r.scope
  last[r.id] = i + 1
  recs[i + 1] = r
  mem_sx_set(p, r.scope, r.id, r.ts)
  if r.ttl > 0 then
    mem_set(p.exp, p.exp_order, r.scope .. '\n' .. r.id, now_ms + r.ttl)
    mem_set(p.ttl, p.ttl_order, r.id, r.scope)
  end
  mem_set(p.recs, p.rec_order, r.id, {put = function()
    local fields = {'id', r.id, 'scope', r.scope, 'text', ARGV[a + 2], 'vec', ARGV[a + 3], 'cats', ARGV[a + 4],
      'sc', ARGV[a + 5], 'sh', ARGV[a + 6], 'meta', ARGV[a + 7], 'imp', ARGV[a + 8], 'ts', fk_fmt(r.ts)}
    if r.ttl > 0 then
      fields[#fields + 1] = 'exp'
      fields[#fields + 1] = fk_fmt(now_ms + r.ttl)
    end
    -- In place (no DEL first): see the plan in mem_lib.lua.
    redis.call('HSET', r.rk, unpack(fields))
    if r.ttl > 0 then
      redis.call('PEXPIRE', r.rk, r.ttl)
    else
      redis.call('HDEL', r.rk, 'exp')
      redis.call('PERSIST', r.rk)
    end
  end})
end

-- Every precondition holds and every key was read; writes start here.
-- The VADDs first: a vector set made by other means can still refuse one.
if vq ~= '' then
  for i, r in ipairs(recs) do
    if last[r.id] == i then
      local a = r.a
      local attrs = '{"imp":' .. ARGV[a + 8] .. ',"ts":' .. fk_fmt(r.ts)
      if ARGV[a + 4] ~= '' then
        attrs = attrs .. ',"cats":["' .. string.gsub(ARGV[a + 4], ',', '","') .. '"]'
      end
      redis.call('VADD', base .. 'vs:' .. r.scope, 'FP32', ARGV[a + 3], r.id, vq, 'SETATTR', attrs .. '}')
      p.keepvs[r.scope .. '\n' .. r.id] = true
    end
  end
end
mem_apply(p)
local out = {}
for i, r in ipairs(recs) do out[i] = fk_fmt(r.ts) end
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
if vq ~= '' and not vq_had then redis.call('HSET', KEYS[3], 'vq', vq) end
mem_bump(KEYS[3])
return out
