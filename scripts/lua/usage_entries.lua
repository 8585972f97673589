-- usage_entries.lua: read one page of a session's usage entries, filtered.
--
-- KEYS[1] umeta hash, KEYS[2] ulog entries list
-- ARGV[1] cursor epoch ("" for the first page), ARGV[2] start index,
-- ARGV[3] limit (matches to return), ARGV[4] scan bound (entries to look
-- at, at most), ARGV[5] kinds ("," separated, "" for all), ARGV[6] step
-- min, ARGV[7] step max ("" for none), ARGV[8] since ms, ARGV[9] until ms
-- (exclusive, "" for none)
--
-- Reply: {epoch, count, next, entry...}: the rollup's epoch ("0" without
--        entries), the entry count, the index after the last entry looked
--        at, then the matching entries (JSON) in order.
-- Errors: FENCEKIT_CURSOR (the cursor's epoch is not the rollup's: the
--         usage was deleted and recorded again), FENCEKIT_BADARG,
--         FENCEKIT_CORRUPT; WRONGTYPE.
-- Retryable: yes. Read-only.
-- ReadOnly: yes.
-- Include: lib_base.lua

local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
local start, e1 = fk_int(ARGV[2], 'start')
if not start then return e1 end
if ARGV[1] ~= '' and ARGV[1] ~= epoch and not (ARGV[1] == '0' and start == 0) then
  return redis.error_reply('FENCEKIT_CURSOR epoch ' .. ARGV[1] .. ' is not ' .. epoch)
end
local limit, e2 = fk_int(ARGV[3], 'limit')
if not limit or limit < 1 then return e2 or redis.error_reply('FENCEKIT_BADARG limit') end
local scan, e3 = fk_int(ARGV[4], 'scan')
if not scan or scan < 1 then return e3 or redis.error_reply('FENCEKIT_BADARG scan') end
local kinds = nil
if ARGV[5] ~= '' then
  kinds = {}
  for k in string.gmatch(ARGV[5], '[^,]+') do kinds[k] = true end
end
local function opt(i, what)
  if ARGV[i] == '' then return true, nil end
  local v = fk_num(ARGV[i])
  if not v then return false, redis.error_reply('FENCEKIT_BADARG ' .. what) end
  return true, v
end
local ok, smin = opt(6, 'step min'); if not ok then return smin end
local ok2, smax = opt(7, 'step max'); if not ok2 then return smax end
local ok3, tmin = opt(8, 'since'); if not ok3 then return tmin end
local ok4, tmax = opt(9, 'until'); if not ok4 then return tmax end

local count = redis.call('LLEN', KEYS[2])
local out = {epoch, count, 0}
local i = start
local last = math.min(count, start + scan) - 1
while i <= last do
  local chunk = redis.call('LRANGE', KEYS[2], i, math.min(i + 99, last))
  for _, raw in ipairs(chunk) do
    local okd, e = pcall(cjson.decode, raw)
    if not okd or type(e) ~= 'table' or type(e.step) ~= 'number' or type(e.at) ~= 'number' then
      return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[2])
    end
    i = i + 1
    if (not kinds or kinds[e.kind]) and (not smin or e.step >= smin) and (not smax or e.step <= smax)
        and (not tmin or e.at >= tmin) and (not tmax or e.at < tmax) then
      out[#out + 1] = raw
      if #out - 3 == limit then
        out[3] = i
        return out
      end
    end
  end
end
out[3] = i
return out
