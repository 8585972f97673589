-- acquire.lua: take a lock, or learn who holds it.
--
-- KEYS[1] lock record     KEYS[2] fence counter
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] lease ttl in ms (integer > 0)
-- ARGV[3] "1": join the wait queue if the lock is not granted; "0": do not
-- ARGV[4] queue liveness in ms: the entry counts as alive this long without a re-poll
-- ARGV[5] fence counter ttl in ms, refreshed on every grant ("0": no expiry)
-- ARGV[6] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[7] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH
-- ARGV[8] holder prefix of the caller's process: hand-offs to holders with
--         this prefix are not announced (the caller delivers them in memory)
-- ARGV[9] "1" to rewrite the lease of a holder that finds itself granted
--         (so a following WAIT covers the grant), "0" otherwise
--
-- If the lock is free it goes to the longest-waiting live waiter, else to the
-- caller. A hand-off to another waiter is announced on ARGV[6] with that
-- waiter's holder string as the message.
--
-- Reply: {1, token, pttl_ms, acquired_at_ms}          granted to the caller: new, retried, or handed over
--        {0, token, pttl_ms, acquired_at_ms, holder} held by holder
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key> for a lock record or
--         fence that fencekit did not write; WRONGTYPE for keys of another type.
--         All are raised before the first write.
-- Retryable: yes. A retry by the same holder returns the same token.
-- Include: lib_lock.lua

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|]+|[^|]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local ttl, e1 = fk_int(ARGV[2], 'ttl')
if not ttl or ttl == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG ttl') end
local wait = ARGV[3] == '1'
local lease, e2 = fk_int(ARGV[4], 'lease')
if not lease then return e2 end
local fence_ttl, e3 = fk_int(ARGV[5], 'fence_ttl')
if not fence_ttl then return e3 end
local wake, mode, local_prefix, touch = ARGV[6] or '', ARGV[7] or 'P', ARGV[8] or '', ARGV[9] == '1'

local rec = redis.call('GET', KEYS[1])
if rec then
  local tok, at, h = fk_record(rec)
  if not tok then return redis.error_reply('FENCEKIT_CORRUPT lock ' .. KEYS[1]) end
  local pttl = redis.call('PTTL', KEYS[1])
  if h == holder then
    if touch and pttl > 0 then redis.call('PEXPIRE', KEYS[1], pttl) end
    return {1, tok, pttl, tonumber(at)}
  end
  if wait then
    redis.call('ZSCORE', KEYS[3], holder) -- type check before the first write
    redis.call('HGET', KEYS[4], holder)
    local now_us, now_ms = fk_now()
    fk_enqueue(KEYS[3], KEYS[4], holder, ttl, lease, now_us, now_ms)
  end
  return {0, tok, pttl, tonumber(at), h}
end

local fence_val, e4 = fk_fence(KEYS[2])
if not fence_val then return e4 end
local now_us, now_ms = fk_now()
local head, head_ttl, dead, queued = fk_head(KEYS[3], KEYS[4], now_ms, nil)

-- Every precondition holds; writes start here.
fk_dequeue(KEYS[3], KEYS[4], dead)
if head and head ~= holder then
  local tok = fk_grant(KEYS[1], KEYS[2], fence_val, fence_ttl, head, head_ttl, now_us, now_ms)
  fk_dequeue(KEYS[3], KEYS[4], {head})
  fk_announce(wake, mode, local_prefix, head)
  if wait then fk_enqueue(KEYS[3], KEYS[4], holder, ttl, lease, now_us, now_ms) end
  return {0, tok, head_ttl, now_ms, head}
end
local tok = fk_grant(KEYS[1], KEYS[2], fence_val, fence_ttl, holder, ttl, now_us, now_ms)
if queued > 0 then fk_dequeue(KEYS[3], KEYS[4], {holder}) end
return {1, tok, ttl, now_ms}
