-- lib_usage.lua: helpers of the usage scripts (package usage). Not a
-- script of its own: scripts that name it in an "Include:" header line get
-- it prepended, after lib_base.lua.
--
-- Budgets (KEYS limits hash, holds zset, amounts hash, done zset; see
-- internal/keys Budget) keep in the limits hash: lt, lc (limits on tokens
-- and cost in micro-units, "0": none), st, sc (spent), ttl (ms, "0": no
-- expiry). A hold is live while its score in the holds zset (unix ms) is
-- in the future; expired holds count for nothing even before they are
-- swept.

-- FK_U_MAXSTR bounds names (model, tool, source, outcome, sub-agent id,
-- custom name) and entry ids.
local FK_U_MAXSTR = 256

-- fk_name checks a name argument: at most FK_U_MAXSTR bytes, no '|' (it
-- separates rollup field names) and no control characters; empty only
-- when may_empty.
local function fk_name(s, what, may_empty)
  if type(s) ~= 'string' or #s > FK_U_MAXSTR or (#s == 0 and not may_empty)
      or string.find(s, '[|%c]') then
    return nil, redis.error_reply('FENCEKIT_BADARG ' .. what)
  end
  return s
end

-- fk_ttl_of returns a budget's ttl (ms) from its limits hash; nil and an
-- error reply when it is corrupt; 0 when absent.
local function fk_budget_ttl(limk)
  local v = redis.call('HGET', limk, 'ttl')
  if not v then return 0 end
  local n = fk_num(v)
  if not n then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. limk) end
  return n
end

-- fk_budget_touch gives the budget keys (limk, then the others) its ttl,
-- or removes their ttl when it is 0.
local function fk_budget_touch(ttl, ...)
  for _, k in ipairs({...}) do
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('PERSIST', k) end
  end
end

-- fk_budget_read reads a budget: limits, spent and the sum of its live
-- holds (leaving out hold skip). nil when there is no budget; nil and an
-- error reply when a field is corrupt. Read-only.
local function fk_budget_read(limk, holdk, amtk, now_ms, skip)
  local f = redis.call('HMGET', limk, 'lt', 'lc', 'st', 'sc', 'ttl')
  if not f[1] and not f[2] then
    redis.call('ZCARD', holdk) -- WRONGTYPE checks, so a caller reads every key
    redis.call('HLEN', amtk)
    return false
  end
  local b = {}
  local names = {'lt', 'lc', 'st', 'sc', 'ttl'}
  for i = 1, 5 do
    local v = f[i] or '0'
    local n = fk_num(v)
    if not n then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. limk) end
    b[names[i]] = n
  end
  b.ht, b.hc, b.holds = 0, 0, 0
  local live = redis.call('ZRANGEBYSCORE', holdk, '(' .. fk_fmt(now_ms), '+inf')
  for _, id in ipairs(live) do
    if id ~= skip then
      local a = redis.call('HGET', amtk, id)
      local t, c = string.match(a or '', '^(%d+) (%d+)$')
      if not t then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. amtk) end
      b.ht = b.ht + tonumber(t)
      b.hc = b.hc + tonumber(c)
      b.holds = b.holds + 1
    end
  end
  return b
end

-- fk_budget_fits returns nil when tokens and cost fit in budget b beside
-- what is spent and held, else the OVER_BUDGET error reply:
--   FENCEKIT_OVER_BUDGET <name> <unit> <limit> <spent> <held> <requested>
local function fk_budget_fits(b, name, tokens, cost, tokens_s, cost_s)
  if b.lt > 0 and b.st + b.ht + tokens > b.lt then
    return redis.error_reply('FENCEKIT_OVER_BUDGET ' .. name .. ' tokens ' .. fk_fmt(b.lt) .. ' ' ..
      fk_fmt(b.st) .. ' ' .. fk_fmt(b.ht) .. ' ' .. tokens_s)
  end
  if b.lc > 0 and b.sc + b.hc + cost > b.lc then
    return redis.error_reply('FENCEKIT_OVER_BUDGET ' .. name .. ' cost ' .. fk_fmt(b.lc) .. ' ' ..
      fk_fmt(b.sc) .. ' ' .. fk_fmt(b.hc) .. ' ' .. cost_s)
  end
  return nil
end

-- fk_budget_sweep removes up to 100 expired holds and settle markers older
-- than keep_ms. A write.
local function fk_budget_sweep(holdk, amtk, donek, now_ms, keep_ms)
  local old = redis.call('ZRANGEBYSCORE', holdk, '-inf', fk_fmt(now_ms), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('ZREM', holdk, unpack(old))
    redis.call('HDEL', amtk, unpack(old))
  end
  redis.call('ZREMRANGEBYSCORE', donek, '-inf', fk_fmt(now_ms - keep_ms))
end
