-- budget_reserve.lua: hold an amount on a budget if it fits beside what
-- the budget has spent and what its live holds hold.
--
-- KEYS[1] limits hash, KEYS[2] holds zset, KEYS[3] amounts hash, KEYS[4]
-- done zset (see lib_usage.lua)
-- ARGV[1] reservation id, ARGV[2] tokens, ARGV[3] cost (micro-units),
-- ARGV[4] hold ms (the hold expires then unless settled), ARGV[5] how
-- long settle markers are kept (ms), ARGV[6] the budget's name (for
-- errors)
--
-- Reply: {0} no such budget (nothing held); {1, expiry_ms} held (also when
--        this id holds already: a retry); {2} this id was settled already.
-- Errors: FENCEKIT_OVER_BUDGET <name> <unit> <limit> <spent> <held>
--         <requested>; FENCEKIT_BADARG, FENCEKIT_CORRUPT; WRONGTYPE. All
--         before the first write.
-- Retryable: yes. Holds are keyed by reservation id.
-- Include: lib_base.lua
-- Include: lib_usage.lua

local id, e0 = fk_name(ARGV[1], 'reservation id')
if not id then return e0 end
local tokens, e1 = fk_int(ARGV[2], 'tokens')
if not tokens then return e1 end
local cost, e2 = fk_int(ARGV[3], 'cost')
if not cost then return e2 end
local hold, e3 = fk_int(ARGV[4], 'hold')
if not hold or hold < 1 then return e3 or redis.error_reply('FENCEKIT_BADARG hold') end
local keep, e4 = fk_int(ARGV[5], 'keep')
if not keep then return e4 end
local _, now_ms = fk_now()
local b, e5 = fk_budget_read(KEYS[1], KEYS[2], KEYS[3], now_ms, id)
if b == nil then return e5 end
if b == false then return {0} end
if redis.call('ZSCORE', KEYS[4], id) then return {2} end
local exp = redis.call('ZSCORE', KEYS[2], id)
if exp and tonumber(exp) > now_ms then return {1, tonumber(exp)} end
local over = fk_budget_fits(b, ARGV[6] or '', tokens, cost, ARGV[2], ARGV[3])
if over then return over end
-- Every precondition holds; writes start here.
fk_budget_sweep(KEYS[2], KEYS[3], KEYS[4], now_ms, keep)
redis.call('ZADD', KEYS[2], now_ms + hold, id)
redis.call('HSET', KEYS[3], id, ARGV[2] .. ' ' .. ARGV[3])
fk_budget_touch(b.ttl, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {1, now_ms + hold}
