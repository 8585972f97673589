-- sem_limit.lua: set the number of permits of a semaphore, and hand
-- permits that became free to the waiters.
--
-- KEYS[1] holders (zset)  KEYS[2] holder info (hash)
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] fence counter   KEYS[6] stored limit (see lib_sem.lua)
-- ARGV[1] the new limit (integer > 0)
-- ARGV[2] fence counter ttl in ms: the stored limit lives as long as the
--         fence and is kept alive by every grant ("0": no expiry)
-- ARGV[3] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[4] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH (default)
-- ARGV[5] holder prefix of the caller's process (grants to it are not announced)
--
-- Permits in use are never taken back: lowering the limit below them
-- only stops new grants until enough are released. Raising it serves the
-- waiters in arrival order, as by sem_acquire.lua.
--
-- Reply: {previous_limit, h1, t1, ttl1, ...}: the limit before (0 when none
--        was stored) and the grants this call made.
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key>; WRONGTYPE. All are
--         raised before the first write.
-- Retryable: yes. Setting the same limit twice is the same as once.
-- Include: lib_base.lua
-- Include: lib_lock.lua
-- Include: lib_sem.lua

local limit, e1 = fk_int(ARGV[1], 'limit')
if not limit or limit == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG limit') end
local fence_ttl, e2 = fk_int(ARGV[2], 'fence_ttl')
if not fence_ttl then return e2 end
local mode, e3 = fk_mode(ARGV[4], 'mode')
if not mode then return e3 end
local wake, local_prefix = ARGV[3] or '', ARGV[5] or ''

local prev, e4 = fk_sem_limit(KEYS[6], 0)
if not prev then return e4 end
local fence_val, e5 = fk_fence(KEYS[5])
if not fence_val then return e5 end
local now_us, now_ms = fk_now()
local used, sweep = fk_sem_holders(KEYS[1], KEYS[2], now_ms, nil)
if not used then return sweep end
local grants, drop = fk_sem_plan(KEYS[3], KEYS[4], now_ms, nil, 0, 0, limit - used, limit, nil)

-- Every precondition holds; writes start here.
fk_set_fenced(KEYS[6], fk_fmt(limit), fence_ttl)
local toks = fk_sem_settle(sweep, drop, grants, fence_val, fence_ttl, now_us, now_ms)
local out = fk_sem_announce(grants, toks, nil, wake, mode, local_prefix) -- after the writes
return {prev, unpack(out)}
