-- sem_acquire.lua: take permits of a semaphore, or queue for them.
--
-- KEYS[1] holders (zset)  KEYS[2] holder info (hash)
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] fence counter   KEYS[6] stored limit (see lib_sem.lua)
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] permits wanted (integer > 0)
-- ARGV[3] lease ttl in ms (integer > 0)
-- ARGV[4] "1": join the wait queue if not granted; "0": do not
-- ARGV[5] queue liveness in ms (integer > 0): the entry counts as alive this
--         long without a re-poll
-- ARGV[6] fence counter ttl in ms, refreshed on every grant ("0": no expiry)
-- ARGV[7] the caller's limit (integer > 0), used when KEYS[6] does not exist
-- ARGV[8] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[9] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH (default)
-- ARGV[10] holder prefix of the caller's process: grants to holders with
--         this prefix are not announced (the caller delivers them in memory)
-- Integers are decimal digits only, at most 2^53-1.
--
-- Expired holders are swept first. Then waiters are served in arrival
-- order while their requests fit (the caller's own queue entry counts as
-- live: it is polling); a caller not in the queue is served only when
-- nobody live waits before it. Grants to others are announced on ARGV[8]
-- as "<holder> <token> <ttl_ms>" after every write.
--
-- Reply: {1, token, pttl_ms, acquired_at_ms, fence, h1, t1, ttl1, ...}  granted to the caller (new or retried)
--        {0, used, limit, soonest_ms, fence, h1, t1, ttl1, ...}          not granted: permits in use by live
--              holders, the limit, ms until the soonest lease ends (0: none)
--        {2, limit}                                                      more permits asked than the limit
--        fence: the highest token issued when the script ends ("0": none);
--        a grant announced later with a larger token was made after this
--        call. h, t, ttl triplets: grants this call made to others.
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key> for a limit,
--         fence or holder info that fencekit did not write; WRONGTYPE.
--         All are raised before the first write. A server refusing
--         writes fails the script at its first write, with nothing
--         written and nothing announced.
-- Retryable: yes. A retry by the same holder returns the same token while
--         its lease lasts.
-- Include: lib_base.lua
-- Include: lib_lock.lua
-- Include: lib_sem.lua

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|%s]+|[^|%s]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local n, e1 = fk_int(ARGV[2], 'permits')
if not n or n == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG permits') end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl or ttl == 0 then return e2 or redis.error_reply('FENCEKIT_BADARG ttl') end
local wait, e3 = fk_flag(ARGV[4], 'wait', nil)
if wait == nil then return e3 end
local lease, e4 = fk_int(ARGV[5], 'lease')
if not lease or lease == 0 then return e4 or redis.error_reply('FENCEKIT_BADARG lease') end
local fence_ttl, e5 = fk_int(ARGV[6], 'fence_ttl')
if not fence_ttl then return e5 end
local dflt, e6 = fk_int(ARGV[7], 'limit')
if not dflt or dflt == 0 then return e6 or redis.error_reply('FENCEKIT_BADARG limit') end
local mode, e7 = fk_mode(ARGV[9], 'mode')
if not mode then return e7 end
local wake, local_prefix = ARGV[8] or '', ARGV[10] or ''

local now_us, now_ms = fk_now()
local mine = redis.call('HGET', KEYS[2], holder)
if mine then
  local tok, _, at = fk_sem_info(mine)
  if not tok then return redis.error_reply('FENCEKIT_CORRUPT holder ' .. KEYS[2]) end
  local exp = tonumber(redis.call('ZSCORE', KEYS[1], holder) or '0')
  if exp > now_ms then
    local f = redis.call('GET', KEYS[5])
    if not fk_num(f) then f = tok end
    return {1, tok, exp - now_ms, at, f}
  end
end
local limit, e8 = fk_sem_limit(KEYS[6], dflt)
if not limit then return e8 end
if n > limit then return {2, limit} end
local fence_val, e9 = fk_fence(KEYS[5])
if not fence_val then return e9 end
redis.call('ZSCORE', KEYS[3], holder) -- type checks before the first write
local used, sweep, soonest = fk_sem_holders(KEYS[1], KEYS[2], now_ms, nil)
if not used then return sweep end
local grants, drop, blocked, found, free =
  fk_sem_plan(KEYS[3], KEYS[4], now_ms, holder, n, ttl, limit - used, limit, nil)
local granted = false
for _, g in ipairs(grants) do
  if g[1] == holder then granted = true end
end
if not granted and not found and not blocked and n <= free then
  grants[#grants + 1] = {holder, n, ttl}
  granted = true
end

-- Every precondition holds; writes start here.
local toks = fk_sem_settle(sweep, drop, grants, fence_val, fence_ttl, now_us, now_ms)
local fence = fk_fmt(fence_val)
if #toks > 0 then fence = toks[#toks] end
if wait and not granted then fk_sem_enqueue(holder, n, ttl, lease, now_us, now_ms) end
local others = fk_sem_announce(grants, toks, holder, wake, mode, local_prefix) -- after the writes
if granted then
  local tok
  for i, g in ipairs(grants) do
    if g[1] == holder then tok = toks[i] end
  end
  return {1, tok, ttl, now_ms, fence, unpack(others)}
end
for _, g in ipairs(grants) do
  used = used + g[2]
  if soonest == 0 or g[3] < soonest then soonest = g[3] end
end
return {0, used, limit, soonest, fence, unpack(others)}
