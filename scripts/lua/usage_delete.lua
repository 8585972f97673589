-- usage_delete.lua: delete the usage of a session (fenced): its entries,
-- rollup, sub-agent links and its own budget with its holds.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] session state hash (its
-- fence is checked), KEYS[4] umeta, KEYS[5] ulog, KEYS[6] uids, KEYS[7]
-- ukids, KEYS[8] KEYS[9] KEYS[10] KEYS[11] the session budget's limits,
-- holds, amounts, done
-- ARGV[1] token ("0" with mode "N"), ARGV[2] mode "S" | "R" | "N"
--
-- Reply: 1 if there was anything to delete, else 0 (then without checking
--        the token: nothing is written).
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT,
--         FENCEKIT_BADARG. All before the first write.
-- Retryable: yes. Deleting twice deletes nothing more.
-- Include: lib_base.lua
-- Include: lib_fence.lua

-- Nothing left to delete: nothing to write, whatever the token (a retry
-- whose first attempt ran must not be told it was refused).
if redis.call('EXISTS', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]) == 0 then
  if ARGV[2] == 'N' and ARGV[1] ~= '0' then return redis.error_reply('FENCEKIT_BADARG token') end
  return 0
end
if ARGV[2] == 'N' then
  if ARGV[1] ~= '0' then return redis.error_reply('FENCEKIT_BADARG token') end
else
  local t, e = fk_check(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2])
  if not t then return e end
  local sf = redis.call('HGET', KEYS[3], 'fence')
  if sf then
    local sn = fk_num(sf)
    if not sn then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end
    if sn > t then return redis.error_reply('FENCEKIT_STALE ' .. ARGV[1] .. ' ' .. sf) end
  end
end
-- Every precondition holds; writes start here.
if redis.call('DEL', KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]) > 0 then
  return 1
end
return 0
