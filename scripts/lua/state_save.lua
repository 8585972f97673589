-- state_save.lua: create or replace a session's state document (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4..10] the session's other data keys (msgs, stage, cps, cpd, events, out, outmeta),
-- KEYS[11] the session's inc key (read and deleted on create; see lib_fence.lua)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] expected version: "" any (create or replace), "0" the session must
--         not exist, "<n>" the state must be at version n
-- ARGV[5] agent type, ARGV[6] status, ARGV[7] step (integer >= 0),
-- ARGV[8] data (JSON, validated by the caller), ARGV[9] output (JSON or ""),
-- ARGV[10] error text
-- ARGV[11] expected incarnation ("" or absent: any); with ARGV[4] = n it
--          tells apart a session deleted and created again that reached
--          version n once more
--
-- Creating a state mints the session's incarnation (state field inc, see
-- lib_fence.lua) from the inc key a Delete left, and deletes that key; the
-- "created" event gets an id above every id of the deleted event log.
--
-- Event: "created" (no state before) or "saved", with status and step
--        (lib_fence.lua fk_event, KEYS[8]).
-- Reply: {version, created_at_ms, updated_at_ms, incarnation}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_EXISTS <version> (expected "0", the session exists);
--         FENCEKIT_NOT_FOUND state (expected n, no session);
--         FENCEKIT_REPLACED <incarnation> (expected n and ARGV[11], the
--         state is of another incarnation: deleted and created again);
--         FENCEKIT_CONFLICT <version> (expected n, the state is at another
--         version);
--         FENCEKIT_BADARG <arg>; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply bumps the version again (or,
--         with an expected version, reports a conflict).
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local step, e3 = fk_int(ARGV[7], 'step')
if not step then return e3 end
local version, e4 = fk_version(KEYS[3])
if not version then return e4 end
local exists = redis.call('EXISTS', KEYS[3]) == 1
local want = ARGV[4]
if want == '0' then
  if exists then return redis.error_reply('FENCEKIT_EXISTS ' .. fk_fmt(version)) end
elseif want ~= '' then
  local w = fk_num(want)
  if not w then return redis.error_reply('FENCEKIT_BADARG expected') end
  if not exists then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
  local wi = ARGV[11] or ''
  if wi ~= '' then
    local inc, e5 = fk_incarnation(KEYS[3])
    if not inc then return e5 end
    if wi ~= inc then return redis.error_reply('FENCEKIT_REPLACED ' .. inc) end
  end
  if w ~= version then return redis.error_reply('FENCEKIT_CONFLICT ' .. fk_fmt(version)) end
end
local now_us, now_ms = fk_now()
local inc = nil
if not exists then
  local e6
  inc, e6 = fk_mint_incarnation(KEYS[11], now_us)
  if not inc then return e6 end
end

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local created = redis.call('HGET', KEYS[3], 'created_at')
if inc then
  created = fk_fmt(now_ms)
  redis.call('HSET', KEYS[3], 'created_at', created, 'resume_count', '0', 'cp_seq', '0', 'msg_epoch', '0',
    'inc', fk_fmt(inc))
  redis.call('DEL', KEYS[11])
end
redis.call('HSET', KEYS[3], 'agent_type', ARGV[5], 'status', ARGV[6], 'step', ARGV[7],
  'data', ARGV[8], 'output', ARGV[9], 'error', ARGV[10])
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
if inc then
  fk_event_first('created', v, ARGV[1], now_ms, 'status', ARGV[6], 'step', ARGV[7])
else
  fk_event('saved', v, ARGV[1], 'status', ARGV[6], 'step', ARGV[7])
end
fk_touch(ttl)
return {v, tonumber(created), now_ms, redis.call('HGET', KEYS[3], 'inc') or '0'}
