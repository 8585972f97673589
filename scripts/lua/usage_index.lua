-- usage_index.lua: add a session to (or remove it from) the index of
-- sessions with usage, and forget sessions not seen for a while.
--
-- KEYS[1] sessions by name (zset, score 0), KEYS[2] sessions by last
-- record (zset, score unix ms); both of the tag "usage:index"
-- ARGV[1] op "A" add | "D" remove, ARGV[2] session id, ARGV[3] keep ms
-- (sessions not seen for longer are forgotten; "0": never), ARGV[4] ttl
-- ms of the index keys ("0": keep)
--
-- Reply: 1
-- Errors: FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: yes. Adding or removing twice is the same as once.
-- Include: lib_base.lua

local op = ARGV[1]
if op ~= 'A' and op ~= 'D' then return redis.error_reply('FENCEKIT_BADARG op') end
if ARGV[2] == nil or ARGV[2] == '' then return redis.error_reply('FENCEKIT_BADARG id') end
local keep, e1 = fk_int(ARGV[3], 'keep')
if not keep then return e1 end
local ttl, e2 = fk_int(ARGV[4], 'ttl')
if not ttl then return e2 end
redis.call('ZCARD', KEYS[1])
redis.call('ZCARD', KEYS[2])
-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
if op == 'D' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
redis.call('ZADD', KEYS[1], 0, ARGV[2])
redis.call('ZADD', KEYS[2], now_ms, ARGV[2])
if keep > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. fk_fmt(now_ms - keep), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('ZREM', KEYS[1], unpack(old))
    redis.call('ZREM', KEYS[2], unpack(old))
  end
end
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
