-- state_delete.lua: delete a session's data (fenced). The lock and its
-- fence counter stay, so tokens keep growing.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4..10] the session's other data keys (msgs, stage, cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"
--
-- Event: none. The event log (KEYS[8]) is deleted with the other data keys:
--        a deleted session has no history; one created again starts a new
--        log with "created" at version 1.
-- Reply: 1 deleted, 0 there was no session
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT, FENCEKIT_BADARG;
--         WRONGTYPE. All before the first write.
-- Retryable: yes. Deleting twice is deleting once (the second reports 0).
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local existed = redis.call('EXISTS', KEYS[3])
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
return existed
