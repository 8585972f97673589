-- state_load.lua: read a session's state and message count.
--
-- KEYS[1] state hash, KEYS[2] messages list
--
-- Reply: {} when there is no session, else {message_count, field, value, field, value, ...}
--        with every field of the state hash
-- Errors: WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.

local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {} end
local out = {redis.call('LLEN', KEYS[2])}
for i = 1, #flat do out[i + 1] = flat[i] end
return out
