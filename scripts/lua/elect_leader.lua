-- elect_leader.lua: read an election's leader (package election).
--
-- KEYS[1] lock record of the election name
-- KEYS[2] the leader's value "<term>|<value>"
-- KEYS[3] event log of the name
--
-- Reply: {record ("" when nobody leads), pttl_ms, value entry ("" if none),
--         id of the newest event ("" if none)}. Read together, so the
--         reply is one instant of the election: a follower of the log
--         that starts after that id misses no change.
-- Errors: WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.

local rec = redis.call('GET', KEYS[1]) or ''
local pttl = 0
if rec ~= '' then pttl = redis.call('PTTL', KEYS[1]) end
local last = ''
local ev = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if #ev > 0 then last = ev[1][1] end
return {rec, pttl, redis.call('GET', KEYS[2]) or '', last}
