-- cp_prune.lua: delete all but the newest checkpoints of a session (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash, KEYS[4] messages list,
-- KEYS[5] stage, KEYS[6] checkpoint index (zset: checkpoint id, score = sequence),
-- KEYS[7] checkpoint payloads (hash: checkpoint id -> payload), KEYS[8..10] events, out, outmeta
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] how many of the newest checkpoints to keep (integer >= 0)
--
-- Nothing is written (and the version stays) when there is nothing to delete.
--
-- Event: "pruned" with removed and kept, only when something was deleted.
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {removed, version}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_NOT_FOUND state (no session); FENCEKIT_BADARG <arg>;
--         WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply reports 0 removed (and deletes
--         more if checkpoints were saved in between).
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local keep, e3 = fk_int(ARGV[4], 'keep')
if not keep then return e3 end
local version, e4 = fk_version(KEYS[3])
if not version then return e4 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local n = redis.call('ZCARD', KEYS[6])
redis.call('HLEN', KEYS[7]) -- WRONGTYPE before any write
if n <= keep then return {0, version} end
local _, now_ms = fk_now()

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local ids = redis.call('ZRANGE', KEYS[6], 0, n - keep - 1)
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, n - keep - 1)
for i = 1, #ids, 1000 do
  redis.call('HDEL', KEYS[7], unpack(ids, i, math.min(i + 999, #ids)))
end
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('pruned', v, ARGV[1], 'removed', fk_fmt(#ids), 'kept', fk_fmt(keep))
fk_touch(ttl)
return {#ids, v}
