-- acquire.lua: take a lock, or learn who holds it.
--
-- KEYS[1] lock record     KEYS[2] fence counter
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] event log       KEYS[6] open grant (both optional: lock events,
--         see lib_lock.lua; a grant logs lock_acquired, preceded by
--         lock_lost when the previous grant had expired)
-- KEYS[7] the session's inc key (optional, with KEYS[5] and KEYS[6]): its
--         id floor keeps lock events after a Delete above the deleted
--         log (issue 19; fk_lockev)
-- ARGV[1] holder "<owner>|<attempt>"
-- ARGV[2] lease ttl in ms (integer > 0)
-- ARGV[3] "1": join the wait queue if the lock is not granted; "0": do not
-- ARGV[4] queue liveness in ms (integer > 0): the entry counts as alive this
--         long without a re-poll
-- ARGV[5] fence counter ttl in ms, refreshed on every grant ("0": no expiry)
-- ARGV[6] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[7] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH (default)
-- ARGV[8] holder prefix of the caller's process: hand-offs to holders with
--         this prefix are not announced (the caller delivers them in memory)
-- ARGV[9] "1" to rewrite the lease of a holder that finds itself granted
--         (so a following WAIT covers the grant), "0" otherwise (default)
-- Integers are decimal digits only, at most 2^53-1.
--
-- If the lock is free it goes to the longest-waiting live waiter, else to the
-- caller; the caller's own queue entry counts as live (it is polling). A
-- hand-off to another waiter is announced on ARGV[6] with the message
-- "<holder> <token> <ttl_ms>" of the new holder.
--
-- Reply: {1, token, pttl_ms, acquired_at_ms}          granted to the caller: new, retried, or handed over
--        {0, token, pttl_ms, acquired_at_ms, holder} held by holder
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key> for a lock record,
--         fence or open grant that fencekit did not write (or a fence with
--         no token left above it); WRONGTYPE for keys of another type. All
--         are raised before the first write. A server refusing writes (OOM,
--         READONLY, NOREPLICAS, MISCONF) fails the script at its first
--         write, with nothing written and nothing announced: the hand-off
--         notice goes out only after the grant is written (fk_announce).
-- Retryable: yes. A retry by the same holder returns the same token.
-- Include: lib_base.lua
-- Include: lib_lock.lua

-- Fast path: the lock is free, nobody is queued and lock events are off
-- (the common uncontended acquire). It takes only arguments that the full
-- path below accepts too and does exactly what it would do; anything else
-- (a bad argument included) falls through to the full path. It runs before
-- the libraries are built: see "-- @libraries" in lua.go.
if #KEYS == 4 then
  local h, ttl_s, fttl_s = ARGV[1], ARGV[2], ARGV[5]
  local w, l_s, m, tch = ARGV[3], ARGV[4], ARGV[7], ARGV[9]
  local function num(s)
    if type(s) ~= 'string' or #s > 16 or not string.find(s, '^%d+$') then return nil end
    local n = tonumber(s)
    if n > 9007199254740991 then return nil end
    return n
  end
  local ttl, fttl, lease = num(ttl_s), num(fttl_s), num(l_s)
  if h and string.find(h, '^[^|]+|[^|]+$') and ttl and ttl > 0 and fttl and lease and lease > 0
    and (w == '0' or w == '1') and (m == nil or m == 'P' or m == 'S')
    and (tch == nil or tch == '0' or tch == '1') then
    -- GET, not MGET: MGET answers nil for a key of another type, where
    -- the full path must raise WRONGTYPE.
    local f = 0
    local fv = redis.call('GET', KEYS[2])
    if fv then f = num(fv) end
    if f and f < 9007199254740991 and not redis.call('GET', KEYS[1])
      and redis.call('EXISTS', KEYS[3]) == 0 then
      local t = redis.call('TIME')
      local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
      local ms = math.floor(us / 1000)
      if f + 1 > us then us = f + 1 end
      local tok = string.format('%.0f', us)
      if fttl > 0 then redis.call('SET', KEYS[2], tok, 'PX', fttl) else redis.call('SET', KEYS[2], tok) end
      redis.call('SET', KEYS[1], tok .. '|' .. string.format('%.0f', ms) .. '|' .. h, 'PX', ttl)
      return {1, tok, ttl, ms}
    end
  end
end
-- @libraries

local holder = ARGV[1]
if not holder or not string.match(holder, '^[^|]+|[^|]+$') then
  return redis.error_reply('FENCEKIT_BADARG holder')
end
local ttl, e1 = fk_int(ARGV[2], 'ttl')
if not ttl or ttl == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG ttl') end
local wait, e2 = fk_flag(ARGV[3], 'wait', nil)
if wait == nil then return e2 end
local lease, e3 = fk_int(ARGV[4], 'lease')
if not lease or lease == 0 then return e3 or redis.error_reply('FENCEKIT_BADARG lease') end
local fence_ttl, e4 = fk_int(ARGV[5], 'fence_ttl')
if not fence_ttl then return e4 end
local mode, e5 = fk_mode(ARGV[7], 'mode')
if not mode then return e5 end
local touch, e6 = fk_flag(ARGV[9], 'touch', '0')
if touch == nil then return e6 end
local wake, local_prefix = ARGV[6] or '', ARGV[8] or ''

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

local fence_val, e7 = fk_fence(KEYS[2])
if not fence_val then return e7 end
local open, e8 = fk_lockev_open(fence_ttl)
if open == nil then return e8 end
local now_us, now_ms = fk_now()
local head, head_ttl, dead, queued = fk_head(KEYS[3], KEYS[4], now_ms, nil, holder)
local handoff = head and head ~= holder
local tok = fk_mint(fence_val, now_us)

-- Every precondition holds; writes start here.
fk_dequeue(KEYS[3], KEYS[4], dead)
fk_lockev_lost(open)
if handoff then
  fk_grant(KEYS[1], KEYS[2], fence_ttl, tok, head, head_ttl, now_ms)
  fk_dequeue(KEYS[3], KEYS[4], {head})
  if wait then fk_enqueue(KEYS[3], KEYS[4], holder, ttl, lease, now_us, now_ms) end
  fk_announce(wake, mode, local_prefix, head, tok, head_ttl) -- after the writes
  return {0, tok, head_ttl, now_ms, head}
end
fk_grant(KEYS[1], KEYS[2], fence_ttl, tok, holder, ttl, now_ms)
if queued > 0 then fk_dequeue(KEYS[3], KEYS[4], {holder}) end
return {1, tok, ttl, now_ms}
