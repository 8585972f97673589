-- stream_append.lua: append one entry to a session's output stream (fenced):
-- a chunk, or the terminal marker that ends or fails the stream.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash (read only),
-- KEYS[4..7] the session's other data keys (msgs, stage, cps, cpd) and
-- KEYS[8] its event log (only their ttl is written), KEYS[9] output stream, KEYS[10] stream
-- metadata hash, KEYS[11] the session's inc key (read; ttl written)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep),
-- ARGV[4] running ttl ms ("0": no expiry), ARGV[5] finished ttl ms ("0":
-- keep the running ttl), ARGV[6] kind "c" (chunk), "end" or "fail",
-- ARGV[7] MAXLEN ~ bound ("0": no trimming), ARGV[8] data (the chunk, or
-- the failure reason; "" for end)
--
-- Entry ids are "<ms>-<n>": n numbers the stream's entries from 1 without
-- gaps, ms is the server time, never below the previous entry's nor below
-- the session incarnation's base (lib_fence.lua fk_base_ms), so ids
-- increase strictly, also across a Delete of the session, and readers
-- detect trimmed entries by a jump in n.
-- The stream's status is its last entry: running unless that is an "end"
-- or "fail" marker. The metadata hash keeps fence (highest token accepted),
-- status, reason, created_at, updated_at, and origin: the id of the
-- stream's first entry, below which a position belongs to a stream that was
-- deleted (stream_read.lua refuses it); it is bookkeeping only.
--
-- TTL: the session's other keys (KEYS[3..8], KEYS[11]) are kept alive for
-- the session ttl as by every fenced session write (lib_fence.lua fk_touch:
-- at least ttl, at most ttl + ttl/100 from now), so the session lives as
-- long as its stream is written. A running stream's keys get the running ttl when they
-- have none yet (new keys), and are extended to it when they have less;
-- never shortened. The terminal marker sets the finished ttl on both keys.
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
local sttl, e0 = fk_int(ARGV[3], 'session_ttl')
if not sttl then return e0 end
local ttl, e2 = fk_int(ARGV[4], 'ttl')
if not ttl then return e2 end
local fttl, e3 = fk_int(ARGV[5], 'finished_ttl')
if not fttl then return e3 end
local kind = ARGV[6]
if kind ~= 'c' and kind ~= 'end' and kind ~= 'fail' then return redis.error_reply('FENCEKIT_BADARG kind') end
local maxlen, e4 = fk_int(ARGV[7], 'maxlen')
if not maxlen then return e4 end
if ARGV[8] == nil then return redis.error_reply('FENCEKIT_BADARG data') end

local meta = redis.call('HMGET', KEYS[10], 'status', 'fence')
if meta[2] then
  local f = fk_num(meta[2])
  if not f then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[10]) end
  if f > tok then return redis.error_reply('FENCEKIT_STALE ' .. ARGV[1] .. ' ' .. meta[2]) end
end

local top = redis.call('XREVRANGE', KEYS[9], '+', '-', 'COUNT', 1) -- WRONGTYPE before any write
local lms, ln = 0, 0
if #top > 0 then
  local ms, n = string.match(top[1][1], '^(%d+)-(%d+)$')
  lms, ln = fk_num(ms), fk_num(n)
  if not lms or not ln then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[9]) end
  local k = top[1][2][1]
  if k == 'end' then return redis.error_reply('FENCEKIT_ENDED ended') end
  if k == 'fail' then return redis.error_reply('FENCEKIT_ENDED failed') end
end
local base, e5 = fk_base_ms(KEYS[3], KEYS[11])
if not base then return e5 end
local out_pttl = redis.call('PTTL', KEYS[9])
local meta_new = redis.call('EXISTS', KEYS[10]) == 0

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
local ms = math.max(now_ms, lms, base)
local id = fk_fmt(ms) .. '-' .. fk_fmt(ln + 1)
if maxlen > 0 then
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', maxlen, id, kind, ARGV[8])
else
  redis.call('XADD', KEYS[9], id, kind, ARGV[8])
end
if #top == 0 then redis.call('HSET', KEYS[10], 'origin', id) end

local status = 'running'
if kind == 'end' then status = 'ended' elseif kind == 'fail' then status = 'failed' end
local fence = ARGV[1]
if meta[2] and fk_num(meta[2]) > tok then fence = meta[2] end
redis.call('HSET', KEYS[10], 'status', status, 'fence', fence, 'updated_at', fk_fmt(now_ms))
if kind == 'fail' then redis.call('HSET', KEYS[10], 'reason', ARGV[8]) end
if meta_new then redis.call('HSET', KEYS[10], 'created_at', fk_fmt(now_ms)) end

if sttl > 0 then
  -- The session's keys, as lib_fence.lua fk_touch keeps them (this script
  -- creates none of them; a lock event may have created the event log).
  local p = fk_session_pttl(sttl)
  if p then
    redis.call('PEXPIRE', KEYS[8], p)
  else
    local t = sttl + fk_ttl_slack(sttl)
    for i = 3, 11 do
      if i ~= 9 and i ~= 10 then redis.call('PEXPIRE', KEYS[i], t) end
    end
  end
end

if status == 'running' then
  if ttl > 0 then
    -- out_pttl -2: the stream did not exist; -1 with no entry: created by
    -- XGROUP ... MKSTREAM without a ttl. Both are new keys.
    if (out_pttl < 0 and #top == 0) or (out_pttl >= 0 and out_pttl < ttl) then
      redis.call('PEXPIRE', KEYS[9], ttl)
    end
    local mp = redis.call('PTTL', KEYS[10])
    if meta_new or (mp >= 0 and mp < ttl) then redis.call('PEXPIRE', KEYS[10], ttl) end
  end
else
  local t = fttl
  if t == 0 then t = ttl end
  if t > 0 then
    redis.call('PEXPIRE', KEYS[9], t)
    redis.call('PEXPIRE', KEYS[10], t)
  end
end
return {id, ln + 1}
