-- budget_set.lua: set the limits of a budget (a session's or a scope's),
-- keeping what it has spent and holds.
--
-- KEYS[1] limits hash, KEYS[2] holds zset, KEYS[3] amounts hash, KEYS[4]
-- done zset (see lib_usage.lua)
-- ARGV[1] token limit, ARGV[2] cost limit (micro-units; "0": no limit on
-- that unit, but not both "0"), ARGV[3] ttl ms ("0": the budget never
-- expires; else it expires ttl after its last write)
--
-- Reply: 1
-- Errors: FENCEKIT_BADARG, FENCEKIT_CORRUPT; WRONGTYPE. All before the
--         first write.
-- Retryable: yes. Setting the same limits twice is the same as once.
-- Include: lib_base.lua
-- Include: lib_usage.lua

local lt, e1 = fk_int(ARGV[1], 'token limit')
if not lt then return e1 end
local lc, e2 = fk_int(ARGV[2], 'cost limit')
if not lc then return e2 end
if lt == 0 and lc == 0 then return redis.error_reply('FENCEKIT_BADARG limits') end
local ttl, e3 = fk_int(ARGV[3], 'ttl')
if not ttl then return e3 end
local sp = redis.call('HMGET', KEYS[1], 'st', 'sc')
for i = 1, 2 do
  if sp[i] and not fk_num(sp[i]) then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[1]) end
end
redis.call('ZCARD', KEYS[2])
redis.call('HLEN', KEYS[3])
redis.call('ZCARD', KEYS[4])
-- Every precondition holds; writes start here.
redis.call('HSET', KEYS[1], 'lt', ARGV[1], 'lc', ARGV[2], 'ttl', ARGV[3])
fk_budget_touch(ttl, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
