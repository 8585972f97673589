-- cp_list.lua: read one page of a session's checkpoints, newest first.
--
-- KEYS[1] state hash, KEYS[2] checkpoint index (zset: checkpoint id, score = sequence),
-- KEYS[3] checkpoint payloads (hash: checkpoint id -> payload, see cp_save.lua)
-- ARGV[1] sequence of the cursor's checkpoint ("" for the first page)
-- ARGV[2] id of the cursor's checkpoint (ignored for the first page)
-- ARGV[3] page size (integer >= 1)
-- ARGV[4] incarnation of the cursor ("" for the first page: any)
--
-- The cursor is exclusive: the page starts with the newest checkpoint older
-- than the cursor's. Sequences are unique within a session, so no checkpoint
-- is skipped or repeated while others are saved.
--
-- Reply: {checkpoint_count, incarnation, id, payload, id, payload, ...} with
--        up to ARGV[3] + 1 checkpoints (one more than asked tells the caller
--        there are more)
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_REPLACED <incarnation> (the
--         session was deleted and created again since the cursor was
--         issued); FENCEKIT_CURSOR checkpoint (the cursor's checkpoint is no
--         longer in the index under that sequence: pruned);
--         FENCEKIT_CORRUPT <key> (an indexed checkpoint without a payload);
--         FENCEKIT_BADARG; WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.
-- Include: lib_base.lua

local limit, e1 = fk_int(ARGV[3], 'limit')
if not limit or limit == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG limit') end
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local inc = redis.call('HGET', KEYS[1], 'inc') or '0'
if ARGV[1] ~= '' and (ARGV[4] or '') ~= inc then return redis.error_reply('FENCEKIT_REPLACED ' .. inc) end
local ids
if ARGV[1] == '' then
  ids = redis.call('ZREVRANGE', KEYS[2], 0, limit)
else
  local seq, e2 = fk_int(ARGV[1], 'cursor')
  if not seq then return e2 end
  local score = redis.call('ZSCORE', KEYS[2], ARGV[2])
  if not score or tonumber(score) ~= seq then return redis.error_reply('FENCEKIT_CURSOR checkpoint') end
  ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. fk_fmt(seq), '-inf', 'LIMIT', 0, limit + 1)
end
local out = {redis.call('ZCARD', KEYS[2]), inc}
if #ids == 0 then return out end
local ps = redis.call('HMGET', KEYS[3], unpack(ids))
for i = 1, #ids do
  if not ps[i] then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end
  out[2 * i + 1] = ids[i]
  out[2 * i + 2] = ps[i]
end
return out
