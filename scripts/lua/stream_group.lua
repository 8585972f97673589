-- stream_group.lua: create a consumer group on a session's output stream
-- (creating the stream if needed), idempotently.
--
-- KEYS[1] output stream
-- ARGV[1] group name, ARGV[2] running ttl ms ("0": no expiry), given to the
-- stream when it has no ttl and no entry (XGROUP ... MKSTREAM created it)
--
-- Reply: 1 when the group was created, 0 when it existed.
-- Errors: FENCEKIT_BADARG; WRONGTYPE; other XGROUP errors.
-- Retryable: yes.
-- Include: lib_base.lua

local ttl, e1 = fk_int(ARGV[2], 'ttl')
if not ttl then return e1 end
if ARGV[1] == nil or ARGV[1] == '' then return redis.error_reply('FENCEKIT_BADARG group') end
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local created = 1
if type(r) == 'table' and r.err then
  if string.find(r.err, 'BUSYGROUP', 1, true) then created = 0 else return r end
end
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 and redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return created
