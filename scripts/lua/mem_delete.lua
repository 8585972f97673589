-- mem_delete.lua: delete memory records of one tag (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (field fence), KEYS[4] expiry zset, KEYS[5] scope counts hash,
-- KEYS[6..] record hashes "<base>r:<id>", one per id
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:", ARGV[4] vector-set flag ("" or the
-- quantisation flag of the vset backend: deleted records also leave their
-- scope's vector set), ARGV[5] scope, ARGV[6..] ids
--
-- A record is deleted only if its scope is ARGV[4] or a descendant of it.
--
-- Reply: the number of records deleted
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
if scope == '' or #KEYS ~= #ARGV then return redis.error_reply('FENCEKIT_BADARG count') end
local found = {}
for i = 6, #KEYS do
  local id = ARGV[i]
  if KEYS[i] ~= base .. 'r:' .. id then return redis.error_reply('FENCEKIT_BADARG record key') end
  local s = redis.call('HGET', KEYS[i], 'scope')
  if s and mem_within(s, scope) then found[#found + 1] = {s, id} end
end

-- Writes start here.
local _, now_ms = fk_now()
mem_sweep(base, KEYS[4], KEYS[5], now_ms, vq)
local n = 0
for _, f in ipairs(found) do
  if redis.call('HGET', base .. 'r:' .. f[2], 'scope') == f[1] then -- not an id given twice
    mem_drop(base, KEYS[4], KEYS[5], f[1], f[2], vq)
    n = n + 1
  end
end
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
return n
