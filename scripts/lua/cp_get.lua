-- cp_get.lua: read one checkpoint of a session, or its latest.
--
-- KEYS[1] checkpoint index (zset: checkpoint id, score = sequence),
-- KEYS[2] checkpoint payloads (hash: checkpoint id -> payload, see cp_save.lua)
-- ARGV[1] checkpoint id, or "" for the latest (highest sequence)
--
-- Reply: {} when there is no such checkpoint, else {checkpoint id, payload}
-- Errors: FENCEKIT_CORRUPT <key> (the index names a checkpoint without a payload);
--         WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.

local id = ARGV[1]
if id == '' then
  local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
  if #top == 0 then return {} end
  id = top[1]
  local p = redis.call('HGET', KEYS[2], id)
  if not p then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[2]) end
  return {id, p}
end
local p = redis.call('HGET', KEYS[2], id)
if not p then return {} end
return {id, p}
