-- stream_read.lua: read one page of a session's output stream, with the
-- stream's newest entry (which tells its status).
--
-- KEYS[1] output stream
-- ARGV[1] XRANGE start: "-" or "(<ms>-<n>" (exclusive), validated by the caller
-- ARGV[2] page size (integer >= 1)
--
-- Reply: {newest entry, {entry, ...}}, entries as XRANGE returns them, up
--        to ARGV[2] of them, oldest first.
-- Errors: FENCEKIT_NOT_FOUND stream (no stream, or no entry yet);
--         FENCEKIT_BADARG; WRONGTYPE; ERR for a malformed start.
-- Retryable: yes.
-- ReadOnly: yes.
-- Include: lib_base.lua

local limit, e1 = fk_int(ARGV[2], 'limit')
if not limit or limit == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG limit') end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND stream') end
return {top[1], redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', limit)}
