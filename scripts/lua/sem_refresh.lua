-- sem_refresh.lua: extend the lease of permits the caller still holds.
--
-- KEYS[1] holders (zset)  KEYS[2] holder info (hash) (see lib_sem.lua)
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] token the holder was granted
-- ARGV[3] new lease ttl in ms (integer > 0), counted from now
--
-- An ended lease is never brought back: only a live grant of this holder
-- and token is extended.
--
-- Reply: {1, ttl_ms}  extended
--        {0}          the lease ended (expired, released or swept)
--        {-1, token}  this holder holds permits under another token
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key>; WRONGTYPE.
-- Retryable: yes. Extending twice is the same as extending once.
-- Include: lib_base.lua
-- Include: lib_lock.lua
-- Include: lib_sem.lua

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|%s]+|[^|%s]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local want = ARGV[2]
if not want or not string.match(want, '^[1-9]%d*$') then
  return redis.error_reply('FENCEKIT_BADARG token')
end
local ttl, e1 = fk_int(ARGV[3], 'ttl')
if not ttl or ttl == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG ttl') end

local mine = redis.call('HGET', KEYS[2], holder)
if not mine then return {0} end
local tok = fk_sem_info(mine)
if not tok then return redis.error_reply('FENCEKIT_CORRUPT holder ' .. KEYS[2]) end
if tok ~= want then return {-1, tok} end
local _, now_ms = fk_now()
local exp = tonumber(redis.call('ZSCORE', KEYS[1], holder) or '0')
if exp <= now_ms then return {0} end
redis.call('ZADD', KEYS[1], 'XX', now_ms + ttl, holder)
fk_sem_keep(KEYS[1], ttl)
fk_sem_keep(KEYS[2], ttl)
return {1, ttl}
