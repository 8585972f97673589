-- cp_save.lua: save a checkpoint of a session (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash, KEYS[4] messages list,
-- KEYS[5] stage, KEYS[6] checkpoint index (zset: checkpoint id, score = sequence),
-- KEYS[7] checkpoint payloads (hash: checkpoint id -> payload), KEYS[8..10] events, out, outmeta
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] session id (the id in the keys' hash tag), ARGV[5] step (integer >= 0),
-- ARGV[6] message count (integer, at most the session's message count),
-- ARGV[7] 6 lowercase hex digits (random, from the caller),
-- ARGV[8] state document (JSON or "", validated by the caller),
-- ARGV[9] metadata (a JSON object or "", validated by the caller)
--
-- The checkpoint id is "cpv1-<session id>-s<step>-t<server time ms>-<ARGV[7]>";
-- its sequence is the state's cp_seq + 1 (and above every sequence in the
-- index), and becomes the new cp_seq. The payload stored under the id is
--   "cp1 <seq> <created_ms> <token> <step> <message_count> <msg_epoch> <#state>\n"
--   followed by the state bytes and the metadata bytes, unchanged.
-- msg_epoch is the state's message epoch at the time of the save (see cp_restore.lua).
--
-- Event: "checkpoint" with id, seq and step.
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {checkpoint id, seq, created_at_ms, version}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_NOT_FOUND state (no session);
--         FENCEKIT_BADARG message_count <n> > <count> (more messages than the session has);
--         FENCEKIT_EXISTS checkpoint (the id is taken: same step, millisecond
--         and random digits; the caller retries with other digits);
--         FENCEKIT_BADARG <arg>; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply saves a second checkpoint.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local sid = ARGV[4]
if sid == '' or string.sub(KEYS[3], -(#sid + 9)) ~= ':{' .. sid .. '}:state' then
  return redis.error_reply('FENCEKIT_BADARG session')
end
local step, e3 = fk_int(ARGV[5], 'step')
if not step then return e3 end
local mc, e4 = fk_int(ARGV[6], 'message_count')
if not mc then return e4 end
if not string.match(ARGV[7], '^[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]$') then
  return redis.error_reply('FENCEKIT_BADARG random')
end
local version, e5 = fk_version(KEYS[3])
if not version then return e5 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local st = redis.call('HMGET', KEYS[3], 'cp_seq', 'msg_epoch')
local seq, epoch = fk_num(st[1] or '0'), fk_num(st[2] or '0')
if not seq or not epoch then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end
-- cp_seq orders the index; should it ever lag behind it (the state hash
-- lost while the index stayed), continue after the index's highest score
-- so that sequences stay unique.
local top = redis.call('ZREVRANGE', KEYS[6], 0, 0, 'WITHSCORES')
if top[2] and tonumber(top[2]) > seq then seq = tonumber(top[2]) end
local have = redis.call('LLEN', KEYS[4])
if mc > have then
  return redis.error_reply('FENCEKIT_BADARG message_count ' .. fk_fmt(mc) .. ' > ' .. fk_fmt(have))
end
local _, now_ms = fk_now()
local cpid = 'cpv1-' .. sid .. '-s' .. fk_fmt(step) .. '-t' .. fk_fmt(now_ms) .. '-' .. ARGV[7]
-- Both lookups also raise WRONGTYPE before any write.
if redis.call('ZSCORE', KEYS[6], cpid) or redis.call('HEXISTS', KEYS[7], cpid) == 1 then
  return redis.error_reply('FENCEKIT_EXISTS checkpoint')
end

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
seq = seq + 1
redis.call('ZADD', KEYS[6], fk_fmt(seq), cpid)
redis.call('HSET', KEYS[7], cpid, 'cp1 ' .. fk_fmt(seq) .. ' ' .. fk_fmt(now_ms) .. ' ' .. fk_fmt(tok) .. ' ' ..
  fk_fmt(step) .. ' ' .. fk_fmt(mc) .. ' ' .. fk_fmt(epoch) .. ' ' .. fk_fmt(#ARGV[8]) .. '\n' .. ARGV[8] .. ARGV[9])
redis.call('HSET', KEYS[3], 'cp_seq', fk_fmt(seq))
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('checkpoint', v, ARGV[1], 'id', cpid, 'seq', fk_fmt(seq), 'step', fk_fmt(step))
fk_touch(ttl, 6, 7)
return {cpid, seq, now_ms, v}
