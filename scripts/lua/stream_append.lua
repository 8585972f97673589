-- stream_append.lua: append one entry to a session's output stream (fenced):
-- a chunk, or the terminal marker that ends or fails the stream.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash (read only: its fence),
-- KEYS[4] output stream, KEYS[5] stream metadata hash
-- ARGV[1] token, ARGV[2] mode "S"|"R", ARGV[3] running ttl ms ("0": no expiry),
-- ARGV[4] finished ttl ms ("0": keep the running ttl), ARGV[5] kind "c" (chunk),
-- "end" or "fail", ARGV[6] MAXLEN ~ bound ("0": no trimming), ARGV[7] data
-- (the chunk, or the failure reason; "" for end)
--
-- Entry ids are "<ms>-<n>": n numbers the stream's entries from 1 without
-- gaps, ms is the server time, never below the previous entry's, so ids
-- increase strictly and readers detect trimmed entries by a jump in n.
-- The stream's status is its last entry: running unless that is an "end"
-- or "fail" marker. The metadata hash keeps fence (highest token accepted),
-- status, reason, created_at, updated_at; it is bookkeeping only.
--
-- TTL: a running stream's keys get the running ttl when they have none yet
-- (new keys), and are extended to it when they have less; never shortened.
-- The terminal marker sets the finished ttl on both keys.
--
-- Reply: {entry id, n}
-- Errors: FENCEKIT_ENDED <ended|failed> the stream has its terminal marker;
--         FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT, FENCEKIT_BADARG;
--         WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply appends twice (or fails ENDED).
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local fttl, e3 = fk_int(ARGV[4], 'finished_ttl')
if not fttl then return e3 end
local kind = ARGV[5]
if kind ~= 'c' and kind ~= 'end' and kind ~= 'fail' then return redis.error_reply('FENCEKIT_BADARG kind') end
local maxlen, e4 = fk_int(ARGV[6], 'maxlen')
if not maxlen then return e4 end
if ARGV[7] == nil then return redis.error_reply('FENCEKIT_BADARG data') end

local meta = redis.call('HMGET', KEYS[5], 'status', 'fence')
if meta[2] then
  local f = fk_num(meta[2])
  if not f then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[5]) end
  if f > tok then return redis.error_reply('FENCEKIT_STALE ' .. ARGV[1] .. ' ' .. meta[2]) end
end

local top = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1) -- WRONGTYPE before any write
local lms, ln = 0, 0
if #top > 0 then
  local ms, n = string.match(top[1][1], '^(%d+)-(%d+)$')
  lms, ln = fk_num(ms), fk_num(n)
  if not lms or not ln then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[4]) end
  local k = top[1][2][1]
  if k == 'end' then return redis.error_reply('FENCEKIT_ENDED ended') end
  if k == 'fail' then return redis.error_reply('FENCEKIT_ENDED failed') end
end
local out_pttl = redis.call('PTTL', KEYS[4])
local meta_new = redis.call('EXISTS', KEYS[5]) == 0

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
local ms = now_ms
if lms > ms then ms = lms end
local id = fk_fmt(ms) .. '-' .. fk_fmt(ln + 1)
if maxlen > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, id, kind, ARGV[7])
else
  redis.call('XADD', KEYS[4], id, kind, ARGV[7])
end

local status = 'running'
if kind == 'end' then status = 'ended' elseif kind == 'fail' then status = 'failed' end
local fence = ARGV[1]
if meta[2] and fk_num(meta[2]) > tok then fence = meta[2] end
redis.call('HSET', KEYS[5], 'status', status, 'fence', fence, 'updated_at', fk_fmt(now_ms))
if kind == 'fail' then redis.call('HSET', KEYS[5], 'reason', ARGV[7]) end
if meta_new then redis.call('HSET', KEYS[5], 'created_at', fk_fmt(now_ms)) end

if status == 'running' then
  if ttl > 0 then
    -- out_pttl -2: the stream did not exist; -1 with no entry: created by
    -- XGROUP ... MKSTREAM without a ttl. Both are new keys.
    if (out_pttl < 0 and #top == 0) or (out_pttl >= 0 and out_pttl < ttl) then
      redis.call('PEXPIRE', KEYS[4], ttl)
    end
    local mp = redis.call('PTTL', KEYS[5])
    if meta_new or (mp >= 0 and mp < ttl) then redis.call('PEXPIRE', KEYS[5], ttl) end
  end
else
  local t = fttl
  if t == 0 then t = ttl end
  if t > 0 then
    redis.call('PEXPIRE', KEYS[4], t)
    redis.call('PEXPIRE', KEYS[5], t)
  end
end
return {id, ln + 1}
