-- stream_read.lua: read one page of a session's output stream, with the
-- stream's newest entry (which tells its status).
--
-- KEYS[1] output stream, KEYS[2] stream metadata hash (see stream_append.lua)
-- ARGV[1] XRANGE start: "-" or "(<ms>-<n>" (exclusive), validated by the caller
-- ARGV[2] page size (integer >= 1)
--
-- A start below the stream's origin (its first entry, as recorded in the
-- metadata hash) is a position in a stream that was deleted since (with
-- its session, or expired): ids grow across those, so the position is
-- older than every entry, and it is refused instead of being read as the
-- start of this stream.
--
-- Reply: {newest entry, {entry, ...}}, entries as XRANGE returns them, up
--        to ARGV[2] of them, oldest first.
-- Errors: FENCEKIT_NOT_FOUND stream (no stream, or no entry yet);
--         FENCEKIT_REPLACED stream <origin> (a start below the origin);
--         FENCEKIT_BADARG; WRONGTYPE; ERR for a malformed start.
-- Retryable: yes.
-- ReadOnly: yes.
-- Include: lib_base.lua

local limit, e1 = fk_int(ARGV[2], 'limit')
if not limit or limit == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG limit') end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND stream') end
if ARGV[1] ~= '-' then
  local origin = redis.call('HGET', KEYS[2], 'origin')
  local sms, sn = string.match(ARGV[1], '^%((%d+)%-(%d+)$')
  local oms, on = string.match(origin or '', '^(%d+)%-(%d+)$')
  if sms and oms then
    sms, sn, oms, on = tonumber(sms), tonumber(sn), tonumber(oms), tonumber(on)
    if sms < oms or (sms == oms and sn < on) then
      return redis.error_reply('FENCEKIT_REPLACED stream ' .. origin)
    end
  end
end
return {top[1], redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', limit)}
