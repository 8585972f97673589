-- mem_reset.lua: delete every record of a scope and its descendants
-- (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (field fence), KEYS[4] expiry zset, KEYS[5] scope counts hash
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:", ARGV[4] vector-set flag ("" or the
-- quantisation flag of the vset backend: the scopes' vector sets
-- "<base>vs:<scope>" are deleted too, and the meta hash's vq field, the
-- tag's quantisation, when no scope of the tag is left), ARGV[5] scope
--
-- Reply: the number of index entries removed (records, including expired
-- ones not swept yet)
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_BADARG <arg>; WRONGTYPE. All before the first write.
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
local scopes = {}
for _, s in ipairs(redis.call('HKEYS', KEYS[5])) do
  if mem_within(s, scope) then scopes[#scopes + 1] = s end
end
local exps = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local s = string.match(m, '^(.-)\n')
  if s and mem_within(s, scope) then exps[#exps + 1] = m end
end

-- Writes start here.
local n = 0
for _, s in ipairs(scopes) do
  local sk = base .. 'sx:' .. s
  local ids = redis.call('ZRANGE', sk, 0, -1)
  for i = 1, #ids, 500 do
    local ks = {}
    for j = i, math.min(i + 499, #ids) do ks[#ks + 1] = base .. 'r:' .. ids[j] end
    redis.call('DEL', unpack(ks))
  end
  n = n + #ids
  redis.call('DEL', sk)
  if vq ~= '' then redis.call('DEL', base .. 'vs:' .. s) end
  redis.call('HDEL', KEYS[5], s)
end
for i = 1, #exps, 500 do
  redis.call('ZREM', KEYS[4], unpack(exps, i, math.min(i + 499, #exps)))
end
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
if vq ~= '' and redis.call('HLEN', KEYS[5]) == 0 then redis.call('HDEL', KEYS[3], 'vq') end
return n
