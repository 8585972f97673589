-- stage_commit.lua: the write of a promote (fenced, version-checked): store
-- the state document computed by the caller from what stage_read.lua
-- returned, and remove the stage fields it was computed from, together.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4] messages list, KEYS[5] stage hash (written),
-- KEYS[6..10] the session's other data keys (cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] expected version (integer): the version stage_read.lua returned
-- ARGV[5] expected incarnation: the one stage_read.lua returned
-- ARGV[6] data: the new state document (JSON, validated by the caller)
-- ARGV[7] "1": also replace agent type, status, step, output and error with
--         ARGV[8..12] (save and promote); "0": keep them (ARGV[8..12] ignored)
-- ARGV[8] agent type, ARGV[9] status, ARGV[10] step (integer >= 0),
-- ARGV[11] output (JSON or ""), ARGV[12] error text
-- ARGV[13..] stage hash fields to remove
--
-- Every write to a session bumps its version, so a matching version (and
-- incarnation, against a delete and re-create) means the stage fields are
-- still the ones read: the document and the removal cannot go apart.
--
-- Event: "promoted" with removed (stage fields removed) and fields (named).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {version, removed}
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_REPLACED <incarnation> (the
--         session was deleted and created again since the read);
--         FENCEKIT_CONFLICT <version> (the state is at another version); FENCEKIT_STALE,
--         FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE.
--         All before the first write.
-- Retryable: no. A retry after a lost reply reports FENCEKIT_CONFLICT.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local want, e3 = fk_int(ARGV[4], 'expected')
if not want then return e3 end
local replace, e4 = fk_flag(ARGV[7], 'replace')
if replace == nil then return e4 end
if replace then
  local step, e5 = fk_int(ARGV[10], 'step')
  if not step then return e5 end
  if not ARGV[9] or ARGV[9] == '' then return redis.error_reply('FENCEKIT_BADARG status') end
end
local version, e6 = fk_version(KEYS[3])
if not version then return e6 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local inc, e7 = fk_incarnation(KEYS[3])
if not inc then return e7 end
if inc ~= ARGV[5] then return redis.error_reply('FENCEKIT_REPLACED ' .. inc) end
if version ~= want then return redis.error_reply('FENCEKIT_CONFLICT ' .. fk_fmt(version)) end
redis.call('HLEN', KEYS[5]) -- WRONGTYPE before any write

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
if replace then
  redis.call('HSET', KEYS[3], 'data', ARGV[6], 'agent_type', ARGV[8], 'status', ARGV[9],
    'step', ARGV[10], 'output', ARGV[11], 'error', ARGV[12])
else
  redis.call('HSET', KEYS[3], 'data', ARGV[6])
end
local removed = 0
for i = 13, #ARGV, 1000 do
  removed = removed + redis.call('HDEL', KEYS[5], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('promoted', v, ARGV[1], 'removed', fk_fmt(removed), 'fields', fk_fmt(math.max(#ARGV - 12, 0)))
fk_touch(ttl)
return {v, removed}
