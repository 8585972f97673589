-- sem_inspect.lua: read a semaphore's state.
--
-- KEYS[1] holders (zset)  KEYS[2] holder info (hash)
-- KEYS[3] wait queue      KEYS[4] wait queue info
-- KEYS[5] fence counter   KEYS[6] stored limit (see lib_sem.lua)
--
-- Reply: {stored_limit ("" if none), fence ("" if none), now_ms,
--         {holder, info, lease_end_ms, ...}, {waiter, info, arrival_us, ...}}
--         holders whose lease ended are left out; info strings as in lib_sem.lua.
-- Errors: WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: no: it reads the server's TIME, which miniredis refuses in
--         read-only scripts.
-- Include: lib_base.lua

local _, now_ms = fk_now()
local holders = {}
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now_ms then
    holders[#holders + 1] = all[i]
    holders[#holders + 1] = redis.call('HGET', KEYS[2], all[i]) or ''
    holders[#holders + 1] = all[i + 1]
  end
end
local waiters = {}
local q = redis.call('ZRANGE', KEYS[3], 0, 999, 'WITHSCORES')
for i = 1, #q, 2 do
  waiters[#waiters + 1] = q[i]
  waiters[#waiters + 1] = redis.call('HGET', KEYS[4], q[i]) or ''
  waiters[#waiters + 1] = q[i + 1]
end
return {redis.call('GET', KEYS[6]) or '', redis.call('GET', KEYS[5]) or '', now_ms, holders, waiters}
