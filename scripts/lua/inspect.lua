-- inspect.lua: read a lock's state in one consistent snapshot (read-only).
--
-- KEYS[1] lock record     KEYS[2] fence counter     KEYS[3] wait queue
-- ARGV: none
--
-- Reply: {record, pttl_ms, fence, waiters}
--   record is "" when the lock is free; pttl_ms is negative then.
--   fence is the highest token issued ("" if none is remembered).
--   waiters counts wait queue entries, live or not.
-- Errors: WRONGTYPE.
-- Retryable: yes (read-only).
-- ReadOnly: yes

local rec = redis.call('GET', KEYS[1]) or ''
local fence = redis.call('GET', KEYS[2]) or ''
return {rec, redis.call('PTTL', KEYS[1]), fence, redis.call('ZCARD', KEYS[3])}
