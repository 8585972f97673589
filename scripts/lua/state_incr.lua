-- state_incr.lua: add to a counter of a session's state (fenced):
-- resume_count or step.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4..10] the session's other data keys (msgs, stage, cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] field: "resume_count" or "step"
-- ARGV[5] increment (integer >= 1)
--
-- Event: "resumed" with resume_count, or "step" with step (the new value).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {new value, version}
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_STALE, FENCEKIT_NOT_HOLDER,
--         FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply increments again.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local field = ARGV[4]
if field ~= 'resume_count' and field ~= 'step' then return redis.error_reply('FENCEKIT_BADARG field') end
local by, e3 = fk_int(ARGV[5], 'increment')
if not by or by == 0 then return e3 or redis.error_reply('FENCEKIT_BADARG increment') end
local version, e4 = fk_version(KEYS[3])
if not version then return e4 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local cur = fk_num(redis.call('HGET', KEYS[3], field) or '0')
if not cur or cur + by > 9007199254740991 then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
redis.call('HSET', KEYS[3], field, fk_fmt(cur + by))
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
if field == 'resume_count' then
  fk_event('resumed', v, ARGV[1], 'resume_count', fk_fmt(cur + by))
else
  fk_event('step', v, ARGV[1], 'step', fk_fmt(cur + by))
end
fk_touch(ttl)
return {cur + by, v}
