-- sem_release.lua: give permits back, or stop waiting for them, and hand
-- the freed permits to the waiters.
--
-- KEYS[1] holders (zset)  KEYS[2] holder info (hash)
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] fence counter   KEYS[6] stored limit (see lib_sem.lua)
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] token the holder was granted, or "0" for any grant of this holder
--         (a waiter that gives up: it may have been granted after its last look)
-- ARGV[3] fence counter ttl in ms ("0": no expiry)
-- ARGV[4] the caller's limit (integer > 0), used when KEYS[6] does not exist
-- ARGV[5] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[6] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH (default)
-- ARGV[7] holder prefix of the caller's process (grants to it are not announced)
--
-- The caller leaves the holders and the wait queue in every case; then
-- waiters are served in arrival order as by sem_acquire.lua, in the same
-- script, and the grants announced after every write.
--
-- Reply: {status, h1, t1, ttl1, ...}
--   status 1: the caller held the permits until now
--   status 0: the caller held none (its lease had ended, or it never held)
--   status -1: the caller holds permits under another token; nothing of
--              them was changed
--   h, t, ttl triplets: grants this call made.
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key>; WRONGTYPE. All are
--         raised before the first write. A server refusing writes fails
--         the script at its first write, with nothing written or announced.
-- Retryable: no. A retry after a lost reply reports status 0.
-- Include: lib_base.lua
-- Include: lib_lock.lua
-- Include: lib_sem.lua

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|%s]+|[^|%s]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local want = ARGV[2]
if not want or not string.match(want, '^%d+$') then
  return redis.error_reply('FENCEKIT_BADARG token')
end
local fence_ttl, e1 = fk_int(ARGV[3], 'fence_ttl')
if not fence_ttl then return e1 end
local dflt, e2 = fk_int(ARGV[4], 'limit')
if not dflt or dflt == 0 then return e2 or redis.error_reply('FENCEKIT_BADARG limit') end
local mode, e3 = fk_mode(ARGV[6], 'mode')
if not mode then return e3 end
local wake, local_prefix = ARGV[5] or '', ARGV[7] or ''

local now_us, now_ms = fk_now()
local status, skip = 0, holder
local mine = redis.call('HGET', KEYS[2], holder)
if mine then
  local tok = fk_sem_info(mine)
  if not tok then return redis.error_reply('FENCEKIT_CORRUPT holder ' .. KEYS[2]) end
  if want ~= '0' and tok ~= want then
    status, skip = -1, nil
  else
    local exp = tonumber(redis.call('ZSCORE', KEYS[1], holder) or '0')
    if exp > now_ms then status = 1 end
  end
end
local limit, e4 = fk_sem_limit(KEYS[6], dflt)
if not limit then return e4 end
local fence_val, e5 = fk_fence(KEYS[5])
if not fence_val then return e5 end
redis.call('ZSCORE', KEYS[3], holder) -- type checks before the first write
local used, sweep, _ = fk_sem_holders(KEYS[1], KEYS[2], now_ms, skip)
if not used then return sweep end
local grants, drop = fk_sem_plan(KEYS[3], KEYS[4], now_ms, nil, 0, 0, limit - used, limit, holder)
drop[#drop + 1] = holder

-- Every precondition holds; writes start here.
local toks = fk_sem_settle(sweep, drop, grants, fence_val, fence_ttl, now_us, now_ms)
local out = fk_sem_announce(grants, toks, nil, wake, mode, local_prefix) -- after the writes
return {status, unpack(out)}
