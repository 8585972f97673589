-- stage_put.lua: stage one tool call's change under a step of a session
-- (fenced). The change is kept in the session's stage hash until a promote
-- applies it to the state document or a discard drops it.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4] messages list, KEYS[5] stage hash (written),
-- KEYS[6..10] the session's other data keys (cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] step (integer >= 0)
-- ARGV[5] tool call id (validated by the caller; never contains "|")
-- ARGV[6] timestamp in ms (integer >= 0); "": the server time
-- ARGV[7] change body: a JSON object with at least one member, e.g.
--         {"patches":[...],"merge":{...}} (validated by the caller)
--
-- Field "<step>|<tool call id>" of the stage hash is set to the body with
-- the accepted token and the timestamp put in front of its members:
-- {"token":<token>,"ts":<ms>,"patches":...}. The script writes the token
-- itself, so a change always records the token that passed the fence check.
-- Staging the same step and tool call id again replaces the change.
--
-- Event: "staged" with step and call (the tool call id).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {version, ts_ms}
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_STALE, FENCEKIT_NOT_HOLDER,
--         FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply bumps the version again.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local step, e3 = fk_int(ARGV[4], 'step')
if not step then return e3 end
local call = ARGV[5]
if not call or call == '' or string.find(call, '|', 1, true) then
  return redis.error_reply('FENCEKIT_BADARG tool_call_id')
end
local ts = nil
if ARGV[6] ~= '' then
  local e4
  ts, e4 = fk_int(ARGV[6], 'timestamp')
  if not ts then return e4 end
end
local body = ARGV[7]
if not body or string.sub(body, 1, 2) ~= '{"' or string.sub(body, -1) ~= '}' then
  return redis.error_reply('FENCEKIT_BADARG body')
end
local version, e5 = fk_version(KEYS[3])
if not version then return e5 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
redis.call('HLEN', KEYS[5]) -- WRONGTYPE before any write

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
if not ts then ts = now_ms end
redis.call('HSET', KEYS[5], fk_fmt(step) .. '|' .. call,
  '{"token":' .. fk_fmt(tok) .. ',"ts":' .. fk_fmt(ts) .. ',' .. string.sub(body, 2))
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('staged', v, ARGV[1], 'step', fk_fmt(step), 'call', call)
fk_touch(ttl, 5)
return {v, ts}
