-- stage_discard.lua: drop every change staged under a step of a session
-- (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash,
-- KEYS[4] messages list, KEYS[5] stage hash (written),
-- KEYS[6..10] the session's other data keys (cps, cpd, events, out, outmeta)
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] step (integer >= 0)
--
-- With nothing staged under the step nothing is written (the version stays);
-- the fence is checked all the same.
--
-- Event: "discarded" with step and removed, only when something was dropped.
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {removed, version}
-- Errors: FENCEKIT_NOT_FOUND state; FENCEKIT_STALE, FENCEKIT_NOT_HOLDER,
--         FENCEKIT_CORRUPT, FENCEKIT_BADARG; WRONGTYPE. All before the first write.
-- Retryable: no. A retry after a lost reply would also drop a change staged
--         in between.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local step, e3 = fk_int(ARGV[4], 'step')
if not step then return e3 end
local version, e4 = fk_version(KEYS[3])
if not version then return e4 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local pfx = fk_fmt(step) .. '|'
local fields = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[5])) do
  if string.sub(f, 1, #pfx) == pfx then fields[#fields + 1] = f end
end
if #fields == 0 then return {0, version} end

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
local _, now_ms = fk_now()
for i = 1, #fields, 1000 do
  redis.call('HDEL', KEYS[5], unpack(fields, i, math.min(i + 999, #fields)))
end
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('discarded', v, ARGV[1], 'step', fk_fmt(step), 'removed', fk_fmt(#fields))
fk_touch(ttl)
return {#fields, v}
