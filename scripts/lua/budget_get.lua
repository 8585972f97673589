-- budget_get.lua: read a budget: limits, spent, and what live holds hold.
--
-- KEYS[1] limits hash, KEYS[2] holds zset, KEYS[3] amounts hash, KEYS[4]
-- done zset (see lib_usage.lua; not read)
--
-- Reply: {} without a budget; else {token limit, cost limit, tokens spent,
--        cost spent, tokens held, cost held, live holds, ttl ms}.
-- Errors: FENCEKIT_CORRUPT; WRONGTYPE.
-- Retryable: yes. It writes nothing (not sent read-only: miniredis refuses TIME there).
-- Include: lib_base.lua
-- Include: lib_usage.lua

local _, now_ms = fk_now()
local b, e = fk_budget_read(KEYS[1], KEYS[2], KEYS[3], now_ms, nil)
if b == nil then return e end
if b == false then return {} end
return {fk_fmt(b.lt), fk_fmt(b.lc), fk_fmt(b.st), fk_fmt(b.sc), fk_fmt(b.ht), fk_fmt(b.hc), b.holds, fk_fmt(b.ttl)}
