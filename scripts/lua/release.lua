-- release.lua: give up a lock (compare-and-delete) or stop waiting for it.
--
-- KEYS[1] lock record     KEYS[2] fence counter
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] event log       KEYS[6] open grant (both optional: lock events,
--         see lib_lock.lua; logs lock_released, or lock_lost for a grant
--         found expired, then lock_acquired for a hand-off)
-- KEYS[7] the session's inc key (optional, with KEYS[5] and KEYS[6]): its
--         id floor keeps lock events after a Delete above the deleted
--         log (issue 19; fk_lockev)
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] token the holder was granted, or "0" to match any token of this
--         holder (used by a waiter that gives up: it may have been handed the
--         lock after its last look)
-- ARGV[3] fence counter ttl in ms ("0": no expiry)
-- ARGV[4] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[5] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH (default)
-- ARGV[6] holder prefix of the caller's process: hand-offs to holders with
--         this prefix are not announced (the caller delivers them in memory)
--
-- The caller leaves the wait queue in every case. If the caller held the lock
-- (or nobody does), the lock passes straight to the longest-waiting live
-- waiter with a new token, announced on ARGV[4] as "<holder> <token> <ttl_ms>";
-- otherwise it is deleted.
--
-- Reply: {status, next_holder, next_token, next_ttl_ms}
--   status 1: the caller held the lock and released it
--   status 0: nobody held the lock (it expired or was already released)
--   status -1: another holder holds it (next_* then describe that holder:
--              {-1, holder, token, pttl_ms}); nothing was changed but the
--              caller's queue entry
--   next_* are "", "", 0 when the lock was not handed over.
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key> (also a fence with
--         no token left above it, or an open grant fencekit did not
--         write); WRONGTYPE. All are raised before the first write. A
--         server refusing writes (OOM for a hand-off, READONLY, NOREPLICAS,
--         MISCONF) fails the script at its first write, with nothing
--         written and nothing announced (fk_announce).
-- Retryable: no. A retry after a lost reply reports status 0 or -1, and the
--         caller cannot tell whether its lease had expired first.
-- Include: lib_base.lua
-- Include: lib_lock.lua

-- Fast path: the caller holds the lock, nobody is queued and lock events
-- are off (the common uncontended release). It takes only arguments that
-- the full path below accepts too and does exactly what it would do;
-- anything else falls through. It runs before the libraries are built:
-- see "-- @libraries" in lua.go.
if #KEYS == 4 then
  local h, want, fttl, m = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
  if h and want and fttl and string.find(h, '^[^|]+|[^|]+$') and string.find(want, '^%d+$')
    and #fttl <= 16 and string.find(fttl, '^%d+$') and tonumber(fttl) <= 9007199254740991
    and (m == nil or m == 'P' or m == 'S') then
    local rec = redis.call('GET', KEYS[1])
    if rec then
      local tok, at, rh = string.match(rec, '^([1-9]%d*)|(%d+)|(.+|.+)$')
      if rh == h and #tok <= 16 and #at <= 16 and tonumber(tok) <= 9007199254740991
        and tonumber(at) <= 9007199254740991 and (want == '0' or tok == want)
        and redis.call('EXISTS', KEYS[3]) == 0 then
        redis.call('DEL', KEYS[1])
        return {1, '', '', 0}
      end
    end
  end
end
-- @libraries

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|]+|[^|]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local want = ARGV[2]
if not want or not string.match(want, '^%d+$') then
  return redis.error_reply('FENCEKIT_BADARG token')
end
local fence_ttl, e1 = fk_int(ARGV[3], 'fence_ttl')
if not fence_ttl then return e1 end
local mode, e2 = fk_mode(ARGV[5], 'mode')
if not mode then return e2 end
local wake, local_prefix = ARGV[4] or '', ARGV[6] or ''

local rec = redis.call('GET', KEYS[1])
local status, held = 0, nil
if rec then
  local tok, _, h = fk_record(rec)
  if not tok then return redis.error_reply('FENCEKIT_CORRUPT lock ' .. KEYS[1]) end
  if h ~= holder or (want ~= '0' and tok ~= want) then
    local pttl = redis.call('PTTL', KEYS[1])
    redis.call('HGET', KEYS[4], holder) -- type checks before the first write
    redis.call('ZSCORE', KEYS[3], holder)
    fk_dequeue(KEYS[3], KEYS[4], {holder})
    return {-1, h, tok, pttl}
  end
  status, held = 1, tok
  if redis.call('EXISTS', KEYS[3]) == 0 then
    local open, e4 = fk_lockev_open(fence_ttl)
    if open == nil then return e4 end
    -- Nobody waits: the common case, three commands without events.
    redis.call('DEL', KEYS[1])
    fk_lockev_close('lock_released', tok, holder)
    return {1, '', '', 0}
  end
end

local fence_val, e3 = fk_fence(KEYS[2])
if not fence_val then return e3 end
local open, e4 = fk_lockev_open(fence_ttl)
if open == nil then return e4 end
local now_us, now_ms = fk_now()
local head, head_ttl, dead, queued = fk_head(KEYS[3], KEYS[4], now_ms, holder, nil)
local tok = fk_mint(fence_val, now_us)

-- Every precondition holds; writes start here.
if queued > 0 then
  dead[#dead + 1] = holder
  fk_dequeue(KEYS[3], KEYS[4], dead)
end
if held then
  fk_lockev_close('lock_released', held, holder)
else
  fk_lockev_lost(open)
end
if head then
  fk_grant(KEYS[1], KEYS[2], fence_ttl, tok, head, head_ttl, now_ms)
  fk_dequeue(KEYS[3], KEYS[4], {head})
  fk_announce(wake, mode, local_prefix, head, tok, head_ttl) -- after the writes
  return {status, head, tok, head_ttl}
end
if status == 1 then redis.call('DEL', KEYS[1]) end
return {status, '', '', 0}
