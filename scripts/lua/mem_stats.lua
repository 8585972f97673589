-- mem_stats.lua: sweep expired records' index entries and return the
-- record count of every scope of a memory tag.
--
-- KEYS[1] expiry zset, KEYS[2] scope counts hash, KEYS[3] TTL hash (id ->
-- scope of records with a TTL)
-- ARGV[1] base "<prefix>:{mem:<root>}:", ARGV[2] vector-set flag ("" or the
-- quantisation flag of the vset backend: swept records also leave their
-- scope's vector set)
--
-- One call examines at most MEM_SWEEP due expiry entries (mem_lib.lua);
-- "more" says that it may have left some, and the caller calls again (each
-- call makes progress: every examined entry leaves the due range). The keys
-- the sweep writes are read before its first write.
--
-- Reply: {more (0|1), scope1, count1, scope2, count2, ...} (the counts hash
-- after the sweep)
-- Errors: FENCEKIT_CORRUPT <key> (a fixed key, scope index or count of
--         another type); FENCEKIT_BADARG <arg>; a Cluster "non local key"
--         error (a key moved by a slot migration). All before the first
--         write.
-- Retryable: yes (the sweep is idempotent)
-- Include: lib_base.lua
-- Include: mem_lib.lua

local vq, e = mem_vq(ARGV[2])
if not vq then return e end
local e2 = mem_fixed(nil, KEYS[1], KEYS[2], KEYS[3])
if e2 then return e2 end
local _, now_ms = fk_now()
local p = mem_new_plan(ARGV[1], KEYS[1], KEYS[2], KEYS[3], vq)
local e3, more = mem_sweep_plan(p, now_ms)
if e3 then return e3 end
mem_apply(p)
local out = {more and 1 or 0}
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do out[#out + 1] = v end
return out
