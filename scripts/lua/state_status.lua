-- state_status.lua: set a session's status, optionally only from an
-- expected set of statuses (compare-and-set; fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4..10] the session's other data keys (msgs, stage, cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] next status
-- ARGV[5..] expected statuses; none: set unconditionally
--
-- Event: "status" with from and status, when set (not on {0, ...}).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {1, version}                          set
--        {0, current_status, current_version}  the status was not one of the expected
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_STALE, FENCEKIT_NOT_HOLDER,
--         FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: no. A retried compare-and-set after a lost reply reports {0, ...}.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
if not ARGV[4] or ARGV[4] == '' then return redis.error_reply('FENCEKIT_BADARG status') end
local version, e3 = fk_version(KEYS[3])
if not version then return e3 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local cur = redis.call('HGET', KEYS[3], 'status') or ''
if #ARGV > 4 then
  local ok = false
  for i = 5, #ARGV do
    if ARGV[i] == cur then ok = true break end
  end
  if not ok then return {0, cur, version} end
end

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
redis.call('HSET', KEYS[3], 'status', ARGV[4])
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('status', v, ARGV[1], 'from', cur, 'status', ARGV[4])
fk_touch(ttl)
return {1, v}
