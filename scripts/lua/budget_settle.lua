-- budget_settle.lua: settle a hold: commit what was really spent, or
-- release it.
--
-- KEYS[1] limits hash, KEYS[2] holds zset, KEYS[3] amounts hash, KEYS[4]
-- done zset (see lib_usage.lua)
-- ARGV[1] reservation id, ARGV[2] op "C" commit | "R" release, ARGV[3]
-- tokens, ARGV[4] cost (micro-units; "C" only, "0" for "R"), ARGV[5] how
-- long settle markers are kept (ms), ARGV[6] the budget's name (for errors)
--
-- A live hold is committed for at most what it holds (else BADARG). A
-- commit whose hold expired (its holder was presumed dead) or was never
-- made is charged only if it fits beside what is spent and held now.
--
-- Reply: {0} no such budget (nothing charged); {1} settled; {2} settled
--        already (a retry: nothing changed).
-- Errors: FENCEKIT_OVER_BUDGET <name> <unit> <limit> <spent> <held>
--         <requested>; FENCEKIT_BADARG, FENCEKIT_CORRUPT; WRONGTYPE. All
--         before the first write.
-- Retryable: yes. A settle marker per reservation id makes a retry a no-op.
-- Include: lib_base.lua
-- Include: lib_usage.lua

local id, e0 = fk_name(ARGV[1], 'reservation id')
if not id then return e0 end
local op = ARGV[2]
if op ~= 'C' and op ~= 'R' then return redis.error_reply('FENCEKIT_BADARG op') end
local tokens, e1 = fk_int(ARGV[3], 'tokens')
if not tokens then return e1 end
local cost, e2 = fk_int(ARGV[4], 'cost')
if not cost then return e2 end
local keep, e3 = fk_int(ARGV[5], 'keep')
if not keep then return e3 end
local _, now_ms = fk_now()
local b, e4 = fk_budget_read(KEYS[1], KEYS[2], KEYS[3], now_ms, id)
if b == nil then return e4 end
if redis.call('ZSCORE', KEYS[4], id) then return {2} end
if b == false then return {0} end
local exp = redis.call('ZSCORE', KEYS[2], id)
local live = exp and tonumber(exp) > now_ms
if op == 'C' then
  if live then
    local a = redis.call('HGET', KEYS[3], id)
    local ht, hc = string.match(a or '', '^(%d+) (%d+)$')
    if not ht then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end
    if tokens > tonumber(ht) or cost > tonumber(hc) then
      return redis.error_reply('FENCEKIT_BADARG commit above the reservation')
    end
  else
    local over = fk_budget_fits(b, ARGV[6] or '', tokens, cost, ARGV[3], ARGV[4])
    if over then return over end
  end
end
-- Every precondition holds; writes start here.
if exp then
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
if op == 'C' then
  if tokens > 0 then redis.call('HINCRBY', KEYS[1], 'st', ARGV[3]) end
  if cost > 0 then redis.call('HINCRBY', KEYS[1], 'sc', ARGV[4]) end
end
redis.call('ZADD', KEYS[4], now_ms, id)
fk_budget_sweep(KEYS[2], KEYS[3], KEYS[4], now_ms, keep)
fk_budget_touch(b.ttl, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {1}
