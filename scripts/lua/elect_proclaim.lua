-- elect_proclaim.lua: set the value of an election's leader (package
-- election), fenced by the leader's term, and log it.
--
-- KEYS[1] lock record of the election name (the leader's lease, lock.lua keys)
-- KEYS[2] the leader's value "<term>|<value>"
-- KEYS[3] event log of the name (the lock's EventLog stream)
-- ARGV[1] the leader's term (its lock token)
-- ARGV[2] the value
-- ARGV[3] ttl in ms of the value and of an event log this call creates
--         (integer > 0)
--
-- The value is written only while the lock record carries the term: a
-- leader that lost its lease cannot proclaim. The event "lock_proclaimed"
-- (v "0", tok the term, holder, value) goes to the log after the value; it
-- is a lock event as statestore reads the log (type lock_*, version 0).
--
-- Reply: {term, pttl_ms}: the term and the lease left on the record.
-- Errors: FENCEKIT_BADARG <arg>; FENCEKIT_NOT_HOLDER <term> <holder token or "">
--         when the record does not carry the term; FENCEKIT_STALE <term>
--         <token> when it carries a newer one; FENCEKIT_CORRUPT <key>;
--         WRONGTYPE. All are raised before the first write.
-- Retryable: yes. Writing the same value twice leaves the same value (the
--         log may show it twice).
-- Include: lib_base.lua

local term = ARGV[1]
if not term or not string.match(term, '^[1-9]%d*$') or not fk_num(term) then
  return redis.error_reply('FENCEKIT_BADARG term')
end
local value = ARGV[2]
if not value then return redis.error_reply('FENCEKIT_BADARG value') end
local keep, e1 = fk_int(ARGV[3], 'ttl')
if not keep or keep == 0 then return e1 or redis.error_reply('FENCEKIT_BADARG ttl') end

local rec = redis.call('GET', KEYS[1])
if not rec then return redis.error_reply('FENCEKIT_NOT_HOLDER ' .. term .. ' ') end
local tok, _, h = fk_record(rec)
if not tok then return redis.error_reply('FENCEKIT_CORRUPT lock ' .. KEYS[1]) end
if tok ~= term then
  if fk_num(tok) > fk_num(term) then
    return redis.error_reply('FENCEKIT_STALE ' .. term .. ' ' .. tok)
  end
  return redis.error_reply('FENCEKIT_NOT_HOLDER ' .. term .. ' ' .. tok)
end
redis.call('GET', KEYS[2]) -- type checks before the first write
redis.call('XLEN', KEYS[3])
local fresh = redis.call('EXISTS', KEYS[3]) == 0
local pttl = redis.call('PTTL', KEYS[1])

-- Every precondition holds; writes start here.
redis.call('SET', KEYS[2], term .. '|' .. value, 'PX', keep)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', FK_EVENTS_MAXLEN, '*',
  'type', 'lock_proclaimed', 'v', '0', 'tok', term, 'holder', h, 'value', value)
if fresh then redis.call('PEXPIRE', KEYS[3], keep) end
return {term, pttl}
