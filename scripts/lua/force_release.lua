-- force_release.lua: an operator takes a lock away from whoever holds it.
--
-- KEYS[1] lock record     KEYS[2] fence counter
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] event log       KEYS[6] open grant (both optional: lock events,
--         see lib_lock.lua; logs lock_force_released, preceded by
--         lock_lost for a grant found expired, and lock_acquired for a
--         hand-off)
-- KEYS[7] the session's inc key (optional, with KEYS[5] and KEYS[6]): its
--         id floor keeps lock events after a Delete above the deleted
--         log (issue 19; fk_lockev)
-- ARGV[1] fence counter ttl in ms ("0": no expiry); a fence that has no
--         expiry, or more time left than this, keeps it
-- ARGV[2] pub/sub channel announcing hand-offs ("" for none)
-- ARGV[3] "S" to announce with SPUBLISH (cluster), "P" with PUBLISH
-- ARGV[4] reason (non-empty, at most 512 bytes)
-- ARGV[5] who asked (non-empty, at most 128 bytes)
--
-- A new token is minted, max(fence + 1, now in µs), and written to the
-- fence, so the removed holder's token (and every older one) is refused
-- as stale by every fenced write from now on. The new token goes to the
-- longest-waiting live waiter if there is one (announced as a hand-off);
-- otherwise the lock is left free. This runs whether the lock was held or
-- not: an operator can always fence out every token issued so far.
--
-- Reply: {status, holder, holder_token, fence, next_holder, next_ttl_ms}
--   status 1: a holder was removed (holder, holder_token name it)
--   status 0: nobody held the lock (holder and holder_token are "")
--   fence: the new token; next_holder: the waiter it went to with a lease
--   of next_ttl_ms, or "" and 0
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_CORRUPT <key> (also a fence with
--         no token left above it); WRONGTYPE. All are raised before the
--         first write. A server refusing writes (OOM, READONLY, NOREPLICAS,
--         MISCONF) fails the script at its first write, with nothing
--         written and nothing announced (fk_announce).
-- Retryable: no. A retry mints another token and removes the next holder.
-- Include: lib_base.lua
-- Include: lib_lock.lua

local fence_ttl, e1 = fk_int(ARGV[1], 'fence_ttl')
if not fence_ttl then return e1 end
local wake = ARGV[2] or ''
local mode, e2 = fk_mode(ARGV[3], 'mode')
if not mode then return e2 end
local reason, by = ARGV[4], ARGV[5]
if not reason or reason == '' or #reason > 512 then return redis.error_reply('FENCEKIT_BADARG reason') end
if not by or by == '' or #by > 128 then return redis.error_reply('FENCEKIT_BADARG by') end

local rec = redis.call('GET', KEYS[1])
local held, holder = '', ''
if rec then
  local tok, _, h = fk_record(rec)
  if not tok then return redis.error_reply('FENCEKIT_CORRUPT lock ' .. KEYS[1]) end
  held, holder = tok, h
end
local fence_val, e3 = fk_fence(KEYS[2])
if not fence_val then return e3 end
-- Never shorten the fence's retention: Lockers that keep it forever
-- (FenceTTL < 0) rely on it across clock steps.
if fence_ttl > 0 then
  local left = redis.call('PTTL', KEYS[2])
  if left == -1 then fence_ttl = 0 elseif left > fence_ttl then fence_ttl = left end
end
local open, e4 = fk_lockev_open(fence_ttl)
if open == nil then return e4 end
local now_us, now_ms = fk_now()
local head, head_ttl, dead = fk_head(KEYS[3], KEYS[4], now_ms, holder, nil)
local tok = fk_mint(fence_val, now_us)

-- Every precondition holds; writes start here.
fk_dequeue(KEYS[3], KEYS[4], dead)
if not rec then fk_lockev_lost(open) end
if KEYS[6] then
  fk_lockev('lock_force_released', tok, holder, 'holder_tok', held, 'reason', reason, 'by', by)
  redis.call('DEL', KEYS[6])
end
if head then
  fk_grant(KEYS[1], KEYS[2], fence_ttl, tok, head, head_ttl, now_ms)
  fk_dequeue(KEYS[3], KEYS[4], {head})
  fk_announce(wake, mode, '', head, tok, head_ttl) -- after the writes
else
  fk_set_fenced(KEYS[2], tok, fence_ttl)
  redis.call('DEL', KEYS[1])
end
local status = 0
if rec then status = 1 end
return {status, holder, held, tok, head or '', head_ttl or 0}
