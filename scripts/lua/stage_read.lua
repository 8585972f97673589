-- stage_read.lua: read what a promote needs in one call: the state's
-- version, incarnation and document, and the changes staged under a step
-- (or under every step, for a listing). Optionally checks a token first, so
-- a stale promoter is refused before it does any work.
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash, KEYS[4] stage hash
-- ARGV[1] token; "": no fence check
-- ARGV[2] mode "S"|"R"|"SQ"|"RQ" (used with a token)
-- ARGV[3] step (integer >= 0); "": the changes of every step
-- ARGV[4] "1": reply with the state document, "0": with "" in its place
--
-- Reply: {} when there is no session, else
--        {version, incarnation, data, other_bytes, field, value, field, value, ...}
--        where other_bytes is the length of output, error and agent_type
--        together (they count against the document size limit), and the
--        fields are the stage hash fields "<step>|<tool call id>" asked for
--        with their values, in hash order.
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT,
--         FENCEKIT_BADARG; WRONGTYPE.
-- Retryable: yes.
-- ReadOnly: yes.
-- Include: lib_base.lua
-- Include: lib_fence.lua

if ARGV[1] ~= '' then
  local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
  if not tok then return e1 end
end
local pfx = nil
if ARGV[3] ~= '' then
  local step, e2 = fk_int(ARGV[3], 'step')
  if not step then return e2 end
  pfx = fk_fmt(step) .. '|'
end
local withData, e3 = fk_flag(ARGV[4], 'data', '0')
if withData == nil then return e3 end
local version, e4 = fk_version(KEYS[3])
if not version then return e4 end
if redis.call('EXISTS', KEYS[3]) == 0 then return {} end
local st = redis.call('HMGET', KEYS[3], 'inc', 'data')
local other = redis.call('HSTRLEN', KEYS[3], 'output') + redis.call('HSTRLEN', KEYS[3], 'error')
  + redis.call('HSTRLEN', KEYS[3], 'agent_type')
local data = ''
if withData then data = st[2] or '' end
local out = {version, st[1] or '0', data, other}
local flat = redis.call('HGETALL', KEYS[4])
for i = 1, #flat, 2 do
  if not pfx or string.sub(flat[i], 1, #pfx) == pfx then
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
  end
end
return out
