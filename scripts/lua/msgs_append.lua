-- msgs_append.lua: append messages to a session (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash, KEYS[4] messages list,
-- KEYS[5..10] the session's other data keys (stage, cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4..] messages (JSON, validated by the caller), at least one
--
-- Event: "messages" with added and count (the message count after).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {message_count, version}
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_STALE, FENCEKIT_NOT_HOLDER,
--         FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply appends twice.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
if #ARGV < 4 then return redis.error_reply('FENCEKIT_BADARG messages') end
local version, e3 = fk_version(KEYS[3])
if not version then return e3 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
redis.call('LLEN', KEYS[4]) -- WRONGTYPE before any write

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
local n = 0
for i = 4, #ARGV, 1000 do
  n = redis.call('RPUSH', KEYS[4], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('messages', v, ARGV[1], 'added', fk_fmt(#ARGV - 3), 'count', fk_fmt(n))
fk_touch(ttl, 4)
return {n, v}
