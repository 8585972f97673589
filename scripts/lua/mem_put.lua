-- mem_put.lua: store a batch of memory records of one tag, atomically
-- (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (field fence), KEYS[4] expiry zset, KEYS[5] scope counts hash,
-- then per record i (from 0): KEYS[6+2i] record hash "<base>r:<id>",
-- KEYS[7+2i] scope index "<base>sx:<scope>"
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:",
-- ARGV[4] vector-set flag: "" (no vector sets) or the quantisation flag
-- "NOQUANT"|"Q8"|"BIN" of every VADD (vset backend),
-- then 11 arguments per record from ARGV[5]: id, scope, text, vec (LE float32
-- blob), cats, sc, sh, meta, imp, created ms ("" = server time), ttl ms ("0" = none)
--
-- A record replaces the record with the same id in the tag (moving it to
-- its new scope). Records with a ttl expire with their hash; their index
-- entries are swept by the next write or stats call. With a vector-set flag
-- every record is also added to its scope's vector set "<base>vs:<scope>"
-- (VADD key FP32 vec id <flag> SETATTR {"imp":..,"ts":..[,"cats":[..]]}) and
-- removed from the set of the scope it leaves; the VADDs run before the other
-- writes, after a VDIM check of existing sets. The meta hash's field vq
-- records the flag the tag's vector sets are created with (set by the
-- first Put that adds to one); a flag that differs is refused before any
-- write, since VADD would fail only at the first set of the other
-- quantisation, after the VADDs of earlier records.
--
-- Reply: {created ms of each record}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_BADARG <arg> (also "vset quantisation <flag>: the tag's
--         vector sets use <vq>"); WRONGTYPE. All before the first write.
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
local vq_had = false
if vq ~= '' then
  local had = redis.call('HGET', KEYS[3], 'vq') -- WRONGTYPE here, before any write
  if had and had ~= vq then
    return redis.error_reply('FENCEKIT_BADARG vset quantisation ' .. vq .. ": the tag's vector sets use " .. had)
  end
  vq_had = had and true or false
end
local nargs = 11
local n = (#ARGV - 4) / nargs
if n < 1 or n ~= math.floor(n) or #KEYS ~= 5 + 2 * n then return redis.error_reply('FENCEKIT_BADARG count') end
local _, now_ms = fk_now()
local recs = {}
for i = 0, n - 1 do
  local a = 5 + nargs * i
  local r = {id = ARGV[a], scope = ARGV[a + 1], rk = KEYS[6 + 2 * i], sk = KEYS[7 + 2 * i]}
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
  r.a = a
  r.old = redis.call('HGET', r.rk, 'scope') -- WRONGTYPE here, before any write
  if vq ~= '' then
    local vk = base .. 'vs:' .. r.scope
    if redis.call('EXISTS', vk) == 1 and redis.call('VDIM', vk) * 4 ~= #ARGV[a + 3] then
      return redis.error_reply('FENCEKIT_BADARG vector set dimension')
    end
  end
  recs[i + 1] = r
end

-- Every precondition holds; writes start here.
mem_sweep(base, KEYS[4], KEYS[5], now_ms, vq)
if vq ~= '' then
  for _, r in ipairs(recs) do
    local a = r.a
    local attrs = '{"imp":' .. ARGV[a + 8] .. ',"ts":' .. fk_fmt(r.ts)
    if ARGV[a + 4] ~= '' then
      attrs = attrs .. ',"cats":["' .. string.gsub(ARGV[a + 4], ',', '","') .. '"]'
    end
    redis.call('VADD', base .. 'vs:' .. r.scope, 'FP32', ARGV[a + 3], r.id, vq, 'SETATTR', attrs .. '}')
  end
end
local out = {}
for i, r in ipairs(recs) do
  local old = redis.call('HGET', r.rk, 'scope') -- again: an earlier record of the batch may have the same id
  if old then mem_drop(base, KEYS[4], KEYS[5], old, r.id, old ~= r.scope and vq or '') end
  local a = r.a
  local ts = fk_fmt(r.ts)
  local fields = {'id', r.id, 'scope', r.scope, 'text', ARGV[a + 2], 'vec', ARGV[a + 3], 'cats', ARGV[a + 4],
    'sc', ARGV[a + 5], 'sh', ARGV[a + 6], 'meta', ARGV[a + 7], 'imp', ARGV[a + 8], 'ts', ts}
  if r.ttl > 0 then
    fields[#fields + 1] = 'exp'
    fields[#fields + 1] = fk_fmt(now_ms + r.ttl)
  end
  redis.call('HSET', r.rk, unpack(fields))
  redis.call('ZADD', r.sk, ts, r.id)
  redis.call('HINCRBY', KEYS[5], r.scope, 1)
  if r.ttl > 0 then
    redis.call('PEXPIRE', r.rk, r.ttl)
    redis.call('ZADD', KEYS[4], fk_fmt(now_ms + r.ttl), r.scope .. '\n' .. r.id)
  end
  out[i] = ts
end
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
if vq ~= '' and not vq_had then redis.call('HSET', KEYS[3], 'vq', vq) end
return out
