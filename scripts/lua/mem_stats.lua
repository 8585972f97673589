-- mem_stats.lua: sweep expired records' index entries and return the
-- record count of every scope of a memory tag.
--
-- KEYS[1] expiry zset, KEYS[2] scope counts hash
-- ARGV[1] base "<prefix>:{mem:<root>}:", ARGV[2] vector-set flag ("" or the
-- quantisation flag of the vset backend: swept records also leave their
-- scope's vector set)
--
-- Reply: {scope1, count1, scope2, count2, ...} (HGETALL of KEYS[2] after the sweep)
-- Errors: WRONGTYPE.
-- Retryable: yes (the sweep is idempotent)
-- Include: lib_base.lua
-- Include: mem_lib.lua

local vq, e = mem_vq(ARGV[2])
if not vq then return e end
local _, now_ms = fk_now()
mem_sweep(ARGV[1], KEYS[1], KEYS[2], now_ms, vq)
return redis.call('HGETALL', KEYS[2])
