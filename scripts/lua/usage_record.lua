-- usage_record.lua: record usage entries of a session and keep its rollup
-- (fenced, idempotent by entry id).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] session state hash (its
-- fence is checked, it is not written), KEYS[4] umeta (rollup) hash,
-- KEYS[5] ulog entries list, KEYS[6] uids hash (entry id -> index),
-- KEYS[7] ukids sub-agent set, KEYS[8] KEYS[9] KEYS[10] KEYS[11] the session budget's
-- limits, holds, amounts and done keys (only their ttl is refreshed)
-- ARGV[1] token ("0" with mode "N"), ARGV[2] mode "S" strict | "R" relaxed
-- | "N" unfenced, ARGV[3] entry ttl ms, ARGV[4] rollup ttl ms ("0": keep),
-- ARGV[5] max entry JSON bytes, then 18 fields per entry:
--   id, kind (tokens|tool|subagent|custom), step, at_ms, source, model,
--   prompt, completion, cached, total, tool, duration_ms, outcome ("ok" or
--   another word: an error), child (sub-agent session id), custom name,
--   custom value, cost (micro-units), entry JSON
--
-- Rollup fields (HINCRBY, exact in Redis): n, n|<kind>, prompt, completion,
-- cached, total, cost, tools, tool_err, tool_ms, subagents, and per model
-- m|<model>|{n,prompt,completion,cached,total,cost}, per tool
-- t|<tool>|{n,err,ms,cost}, per source s|<source>|{n,total,cost}, per
-- custom name c|<name>; step_min, step_max, first_ms, last_ms; meta: fence,
-- epoch (µs, set when the rollup is created: cursors carry it), updated_ms.
-- Reply: {count, flag...}: the entry count after the call, then one flag
--        per entry: 1 recorded, 0 already recorded (same id; counted once).
--        When every entry is recorded already the script writes nothing
--        and replies so without checking the token: a retry whose first
--        attempt ran learns that its entries are in, even after a newer
--        holder took the session.
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT,
--         FENCEKIT_BADARG <field>; WRONGTYPE. All before the first write.
-- Retryable: yes. Entries are keyed by id: a retry records nothing twice.
-- Include: lib_base.lua
-- Include: lib_fence.lua
-- Include: lib_usage.lua

local NF = 18
local mode = ARGV[2]
if mode ~= 'S' and mode ~= 'R' and mode ~= 'N' then return redis.error_reply('FENCEKIT_BADARG mode') end
if mode == 'N' and ARGV[1] ~= '0' then return redis.error_reply('FENCEKIT_BADARG token') end
if mode ~= 'N' and not fk_num(ARGV[1]) then return redis.error_reply('FENCEKIT_BADARG token') end
local ttl_e, e1 = fk_int(ARGV[3], 'entry ttl')
if not ttl_e then return e1 end
local ttl_r, e2 = fk_int(ARGV[4], 'rollup ttl')
if not ttl_r then return e2 end
local maxb, e3 = fk_int(ARGV[5], 'max entry bytes')
if not maxb then return e3 end
local n = (#ARGV - 5) / NF
if n < 1 or n ~= math.floor(n) then return redis.error_reply('FENCEKIT_BADARG entries') end

local kinds = {tokens = true, tool = true, subagent = true, custom = true}
local numf = {[3] = 'step', [4] = 'at', [7] = 'prompt', [8] = 'completion', [9] = 'cached',
  [10] = 'total', [12] = 'duration', [16] = 'custom value', [17] = 'cost'}
local namef = {[5] = 'source', [6] = 'model', [11] = 'tool', [13] = 'outcome', [14] = 'child', [15] = 'custom name'}
local es = {}
for i = 1, n do
  local b = 5 + (i - 1) * NF
  local e = {}
  for j = 1, NF do e[j] = ARGV[b + j] end
  local ok, er = fk_name(e[1], 'id')
  if not ok then return er end
  if not kinds[e[2]] then return redis.error_reply('FENCEKIT_BADARG kind') end
  for j, what in pairs(numf) do
    if not fk_num(e[j]) then return redis.error_reply('FENCEKIT_BADARG ' .. what) end
  end
  for j, what in pairs(namef) do
    local okn, ern = fk_name(e[j], what, true)
    if not okn then return ern end
  end
  if e[2] == 'tool' and (e[11] == '' or e[13] == '') then return redis.error_reply('FENCEKIT_BADARG tool') end
  if e[2] == 'subagent' and e[14] == '' then return redis.error_reply('FENCEKIT_BADARG child') end
  if e[2] == 'custom' and e[15] == '' then return redis.error_reply('FENCEKIT_BADARG custom name') end
  if #e[18] == 0 or #e[18] > maxb then return redis.error_reply('FENCEKIT_BADARG entry size') end
  es[i] = e
end

-- Which entries are new: not in uids, and not earlier in this batch.
local flags, seen, fresh = {}, {}, 0
for i = 1, n do
  local id = es[i][1]
  if seen[id] or redis.call('HEXISTS', KEYS[6], id) == 1 then
    flags[i] = 0
  else
    seen[id] = true
    flags[i] = 1
    fresh = fresh + 1
  end
end
local function reply(count)
  local r = {count}
  for i = 1, n do r[i + 1] = flags[i] end
  return r
end
-- Every entry is recorded already: nothing to write, whatever the token.
-- This is what a retry after a lost reply finds once the first attempt ran,
-- also when a newer holder has taken the session since: it must learn that
-- its entries are in, not that it was refused.
if fresh == 0 then return reply(redis.call('LLEN', KEYS[5])) end

local tok
if mode ~= 'N' then
  local t, e = fk_check(KEYS[1], KEYS[2], KEYS[4], ARGV[1], mode)
  if not t then return e end
  tok = t
  local sf = redis.call('HGET', KEYS[3], 'fence')
  if sf then
    local sn = fk_num(sf)
    if not sn then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3]) end
    if sn > t then return redis.error_reply('FENCEKIT_STALE ' .. ARGV[1] .. ' ' .. sf) end
  end
end

-- Types and corrupt fields, before any write.
local meta = redis.call('HMGET', KEYS[4], 'epoch', 'step_min', 'step_max', 'first_ms', 'last_ms')
for i = 1, 5 do
  if meta[i] and not fk_num(meta[i]) then return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[4]) end
end
redis.call('LLEN', KEYS[5])
redis.call('HLEN', KEYS[6])
redis.call('SCARD', KEYS[7])
local bttl, e4 = fk_budget_ttl(KEYS[8])
if not bttl then return e4 end


-- Every precondition holds; writes start here.
local now_us, now_ms = fk_now()
local m = KEYS[4]
local function add(f, v)
  if v ~= '0' then redis.call('HINCRBY', m, f, v) end
end
local smin, smax = tonumber(meta[2] or ''), tonumber(meta[3] or '')
local tmin, tmax = tonumber(meta[4] or ''), tonumber(meta[5] or '')
local count = redis.call('LLEN', KEYS[5])
for i = 1, n do
  if flags[i] == 1 then
    local e = es[i]
    count = redis.call('RPUSH', KEYS[5], e[18])
    redis.call('HSET', KEYS[6], e[1], fk_fmt(count - 1))
    local kind, model, cost = e[2], e[6], e[17]
    add('n', '1')
    add('n|' .. kind, '1')
    add('cost', cost)
    if kind == 'tokens' then
      add('prompt', e[7]); add('completion', e[8]); add('cached', e[9]); add('total', e[10])
    elseif kind == 'tool' then
      add('tools', '1'); add('tool_ms', e[12])
      add('t|' .. e[11] .. '|n', '1'); add('t|' .. e[11] .. '|ms', e[12]); add('t|' .. e[11] .. '|cost', cost)
      if e[13] ~= 'ok' then add('tool_err', '1'); add('t|' .. e[11] .. '|err', '1') end
    elseif kind == 'subagent' then
      add('subagents', '1')
      redis.call('SADD', KEYS[7], e[14])
    else
      add('c|' .. e[15], e[16])
    end
    if model ~= '' then
      local p = 'm|' .. model .. '|'
      add(p .. 'n', '1'); add(p .. 'cost', cost)
      if kind == 'tokens' then
        add(p .. 'prompt', e[7]); add(p .. 'completion', e[8]); add(p .. 'cached', e[9]); add(p .. 'total', e[10])
      end
    end
    if e[5] ~= '' then
      local p = 's|' .. e[5] .. '|'
      add(p .. 'n', '1'); add(p .. 'cost', cost)
      if kind == 'tokens' then add(p .. 'total', e[10]) end
    end
    local st, at = tonumber(e[3]), tonumber(e[4])
    if not smin or st < smin then smin = st end
    if not smax or st > smax then smax = st end
    if not tmin or at < tmin then tmin = at end
    if not tmax or at > tmax then tmax = at end
  end
end
if fresh > 0 then
  redis.call('HSET', m, 'step_min', fk_fmt(smin), 'step_max', fk_fmt(smax),
    'first_ms', fk_fmt(tmin), 'last_ms', fk_fmt(tmax))
end
if not meta[1] then redis.call('HSET', m, 'epoch', fk_fmt(now_us)) end
redis.call('HSET', m, 'updated_ms', fk_fmt(now_ms))
if tok then redis.call('HSET', m, 'fence', ARGV[1]) end
if ttl_e > 0 then
  redis.call('PEXPIRE', KEYS[5], ttl_e)
  redis.call('PEXPIRE', KEYS[6], ttl_e)
end
if ttl_r > 0 then
  redis.call('PEXPIRE', KEYS[4], ttl_r)
  redis.call('PEXPIRE', KEYS[7], ttl_r)
end
if bttl > 0 then
  for i = 8, 11 do redis.call('PEXPIRE', KEYS[i], bttl) end
end
return reply(count)
