-- mem_reset.lua: delete every record of a scope and its descendants
-- (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (fields fence, vq, ep), KEYS[4] expiry zset, KEYS[5]
-- scope counts hash, KEYS[6] TTL hash (id -> scope of records with a TTL)
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:", ARGV[4] vector-set flag ("" or the
-- quantisation flag of the vset backend: the scopes' vector sets
-- "<base>vs:<scope>" are deleted too, and the meta hash's vq field, the
-- tag's quantisation, when no scope of the tag is left), ARGV[5] scope
--
-- The scopes are those of the counts hash at or under ARGV[5]. Before the
-- first write the script reads every key it will write: each scope's index
-- and vector set, and the record of every id in those indexes (a record
-- whose hash says it lives in a scope outside ARGV[5] is kept: its entry
-- here was a leftover). In a Cluster slot being migrated, a key already
-- moved makes one of those reads fail, and nothing is deleted. The meta
-- hash's field ep (the tag's write epoch) is incremented.
--
-- Reply: the number of index entries removed (records, including expired
-- ones not swept yet)
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_CORRUPT <key> (a fixed key or scope index of another
--         type); FENCEKIT_BADARG <arg>; WRONGTYPE (a record key); a Cluster
--         "non local key" error (a key moved by a slot migration). All
--         before the first write.
-- Retryable: no. (A fenced retry after the lease passed would be refused.)
-- Include: lib_base.lua
-- Include: lib_fence.lua
-- Include: mem_lib.lua

local tok, e1 = mem_fence(ARGV[1], ARGV[2])
if not tok then return e1 end
local base, scope = ARGV[3], ARGV[5]
local vq, e2 = mem_vq(ARGV[4])
if not vq then return e2 end
if scope == '' then return redis.error_reply('FENCEKIT_BADARG scope') end
local e3 = mem_fixed(KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if e3 then return e3 end
local scopes = {}
for _, s in ipairs(redis.call('HKEYS', KEYS[5])) do
  if mem_within(s, scope) then scopes[#scopes + 1] = s end
end
local exps = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local s = string.match(m, '^(.-)\n')
  if s and mem_within(s, scope) then exps[#exps + 1] = m end
end
local n, dels, unttl = 0, {}, {}
for _, s in ipairs(scopes) do
  local sk = base .. 'sx:' .. s
  local e4 = mem_type(sk, 'zset')
  if e4 then return e4 end
  if vq ~= '' then redis.call('EXISTS', base .. 'vs:' .. s) end
  local ids = redis.call('ZRANGE', sk, 0, -1)
  n = n + #ids
  for _, id in ipairs(ids) do
    local rk = base .. 'r:' .. id
    local rs = redis.call('HGET', rk, 'scope')
    if rs == nil or rs == false then
      local ts = redis.call('HGET', KEYS[6], id)
      if ts and mem_within(ts, scope) then unttl[#unttl + 1] = id end
    elseif mem_within(rs, scope) then
      dels[#dels + 1] = rk
      unttl[#unttl + 1] = id
    end
  end
end

-- Every key to write was read; writes start here.
for i = 1, #dels, 500 do
  redis.call('DEL', unpack(dels, i, math.min(i + 499, #dels)))
end
for i = 1, #unttl, 500 do
  redis.call('HDEL', KEYS[6], unpack(unttl, i, math.min(i + 499, #unttl)))
end
for _, s in ipairs(scopes) do
  redis.call('DEL', base .. 'sx:' .. s)
  if vq ~= '' then redis.call('DEL', base .. 'vs:' .. s) end
  redis.call('HDEL', KEYS[5], s)
end
for i = 1, #exps, 500 do
  redis.call('ZREM', KEYS[4], unpack(exps, i, math.min(i + 499, #exps)))
end
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
mem_bump(KEYS[3]) -- before the HDEL: the meta hash must never be emptied and written again
if vq ~= '' and redis.call('HLEN', KEYS[5]) == 0 then redis.call('HDEL', KEYS[3], 'vq') end
return n
