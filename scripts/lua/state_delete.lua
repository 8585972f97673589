-- state_delete.lua: delete a session's data (fenced). The lock and its
-- fence counter stay, so tokens keep growing; so does the session's inc
-- key, so the session created next under this id is a new incarnation
-- whose ids and positions follow every one of this one (lib_fence.lua).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4..10] the session's other data keys (msgs, stage, cps, cpd, events, out, outmeta;
-- the newest ids of KEYS[8] events and KEYS[9] out are read first)
-- KEYS[11] the session's inc key (written)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": no expiry),
-- given to the inc key
--
-- When any of KEYS[3..10] existed, the inc key records the deleted
-- incarnation (inc: the highest of its own and the state's) and floor: the
-- highest of its own, the server time in ms and the ms of the newest entry
-- of the event log and of the output stream.
--
-- Event: none. The event log (KEYS[8]) is deleted with the other data keys:
--        a deleted session has no history; one created again starts a new
--        log with "created" at version 1, with ids above this log's.
-- Reply: 1 deleted, 0 there was no session
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT, FENCEKIT_BADARG;
--         WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply could delete the session the
--         same holder created in between; the caller gets the transport
--         error (outcome unknown) instead.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local inc, e3 = fk_incarnation(KEYS[3])
if not inc then return e3 end
local prev, floor = fk_inc_record(KEYS[11])
if not prev then return floor end
local any = 0
for i = 3, 10 do any = any + redis.call('EXISTS', KEYS[i]) end
local _, now_ms = fk_now()
floor = math.max(floor, now_ms)
for _, k in ipairs({KEYS[8], KEYS[9]}) do
  local top = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1) -- WRONGTYPE before any write
  if #top > 0 then
    local ms = fk_id_ms(top[1][1])
    if not ms then return redis.error_reply('FENCEKIT_CORRUPT ' .. k) end
    floor = math.max(floor, ms)
  end
end
local existed = redis.call('EXISTS', KEYS[3])

-- Every precondition holds; writes start here.
for i = 3, 10 do redis.call('DEL', KEYS[i]) end
if any > 0 then
  redis.call('HSET', KEYS[11], 'inc', fk_fmt(math.max(prev, fk_num(inc))), 'floor', fk_fmt(floor))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[11], ttl) end
end
return existed
