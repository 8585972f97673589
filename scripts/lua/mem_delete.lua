-- mem_delete.lua: delete memory records of one tag (optionally fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence (of the lock named after the tag),
-- KEYS[3] meta hash (fields fence, ep), KEYS[4] expiry zset, KEYS[5] scope
-- counts hash, KEYS[6] TTL hash (id -> scope of records with a TTL),
-- KEYS[7..] record hashes "<base>r:<id>", one per id
-- ARGV[1] token ("" for an unfenced write), ARGV[2] mode "S"|"R",
-- ARGV[3] base "<prefix>:{mem:<root>}:", ARGV[4] vector-set flag ("" or the
-- quantisation flag of the vset backend: deleted records also leave their
-- scope's vector set), ARGV[5] scope, ARGV[6..] ids
--
-- A record is deleted only if its scope is ARGV[5] or a descendant of it.
-- The index, count and vector set of every deleted record's scope, and the
-- keys of swept expiry entries (mem_lib.lua), are read before the first
-- write. The meta hash's field ep (the tag's write epoch) is incremented.
--
-- Reply: the number of records deleted
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_CORRUPT <key> (a fixed key, scope index or count of
--         another type); FENCEKIT_BADARG <arg>; WRONGTYPE (a record key); a
--         Cluster "non local key" error (a key moved by a slot migration).
--         All before the first write.
-- Retryable: no. (A fenced retry after the lease passed would be refused.)
-- Include: lib_base.lua
-- Include: lib_fence.lua
-- Include: mem_lib.lua

local tok, e1 = mem_fence(ARGV[1], ARGV[2])
if not tok then return e1 end
local base, scope = ARGV[3], ARGV[5]
local vq, e2 = mem_vq(ARGV[4])
if not vq then return e2 end
if scope == '' or #KEYS ~= #ARGV + 1 then return redis.error_reply('FENCEKIT_BADARG count') end
local e3 = mem_fixed(KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if e3 then return e3 end
local _, now_ms = fk_now()
local p = mem_new_plan(base, KEYS[4], KEYS[5], KEYS[6], vq)
local e4 = mem_sweep_plan(p, now_ms)
if e4 then return e4 end
local n, seen = 0, {}
for i = 7, #KEYS do
  local id = ARGV[i - 1]
  if KEYS[i] ~= base .. 'r:' .. id then return redis.error_reply('FENCEKIT_BADARG record key') end
  local s = redis.call('HGET', KEYS[i], 'scope')
  if s and not seen[id] and mem_within(s, scope) then
    local e5 = mem_drop_plan(p, s, id)
    if e5 then return e5 end
    n = n + 1
  end
  seen[id] = true
end

-- Writes start here.
mem_apply(p)
if tok ~= '' then redis.call('HSET', KEYS[3], 'fence', tok) end
mem_bump(KEYS[3])
return n
