-- refresh.lua: extend a lease that the caller still holds.
--
-- KEYS[1] lock record
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] token the holder was granted
-- ARGV[3] new lease ttl in ms (integer > 0), counted from now
--
-- An expired or released lock is never brought back: only a record that
-- still names this holder and token is extended.
--
-- Reply: {1, ttl_ms}               extended
--        {0}                       no lock record: the lease expired or was released
--        {-1, holder, token, pttl} another holder (or another grant to this holder) holds it
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key>; WRONGTYPE.
-- Retryable: yes. Extending twice is the same as extending once.
-- Include: lib_base.lua
-- Include: lib_lock.lua

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|]+|[^|]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local want = ARGV[2]
if not want or not string.match(want, '^[1-9]%d*$') then
  return redis.error_reply('FENCEKIT_BADARG token')
end
local ttl, e1 = fk_int(ARGV[3], 'ttl')
if not ttl or ttl == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG ttl') end

local rec = redis.call('GET', KEYS[1])
if not rec then return {0} end
local tok, _, h = fk_record(rec)
if not tok then return redis.error_reply('FENCEKIT_CORRUPT lock ' .. KEYS[1]) end
if h ~= holder or tok ~= want then
  return {-1, h, tok, redis.call('PTTL', KEYS[1])}
end
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, ttl}
