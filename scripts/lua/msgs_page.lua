-- msgs_page.lua: read one page of a session's messages.
--
-- KEYS[1] state hash, KEYS[2] messages list
-- ARGV[1] incarnation of the cursor ("" for the first page: any)
-- ARGV[2] message epoch of the cursor ("" for the first page: any epoch)
-- ARGV[3] index of the first message (integer >= 0)
-- ARGV[4] page size (integer >= 1)
--
-- Reply: {incarnation, epoch, message_count, message, ...} with up to
--        ARGV[4] + 1 messages (one more than asked tells the caller there
--        are more)
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_REPLACED <incarnation> when the
--         session was deleted and created again since the cursor was issued;
--         FENCEKIT_CURSOR <epoch> when the messages were rewritten (restored)
--         since the cursor was issued;
--         FENCEKIT_BADARG; WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.
-- Include: lib_base.lua

local start, e1 = fk_int(ARGV[3], 'start')
if not start then return e1 end
local limit, e2 = fk_int(ARGV[4], 'limit')
if not limit or limit == 0 then return e2 or redis.error_reply('FENCEKIT_BADARG limit') end
local st = redis.call('HMGET', KEYS[1], 'version', 'msg_epoch', 'inc')
if not st[1] then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local epoch, inc = st[2] or '0', st[3] or '0'
if ARGV[1] ~= '' and ARGV[1] ~= inc then return redis.error_reply('FENCEKIT_REPLACED ' .. inc) end
if ARGV[2] ~= '' and ARGV[2] ~= epoch then return redis.error_reply('FENCEKIT_CURSOR ' .. epoch) end
local out = {inc, epoch, redis.call('LLEN', KEYS[2])}
local items = redis.call('LRANGE', KEYS[2], start, start + limit)
for i = 1, #items do out[i + 3] = items[i] end
return out
