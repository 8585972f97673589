-- cp_restore.lua: reset a session to one of its checkpoints (fenced).
--
-- KEYS[1] lock record, KEYS[2] lock fence, KEYS[3] state hash, KEYS[4] messages list,
-- KEYS[5] stage, KEYS[6] checkpoint index, KEYS[7] checkpoint payloads
-- (hash: checkpoint id -> payload, see cp_save.lua), KEYS[8..10] events, out, outmeta
-- ARGV[1] token, ARGV[2] mode "S"|"R"|"SQ"|"RQ", ARGV[3] session ttl ms ("0": keep)
-- ARGV[4] checkpoint id
--
-- The state's data and step become the checkpoint's; the messages are
-- trimmed to the checkpoint's message count. Trimming starts a new message
-- epoch (msg_epoch + 1), so message cursors issued before fail, and records
-- the trim in the state field msg_trims: "<epoch>:<length>,..." where entry
-- (e, n) says the trim that started epoch e kept n messages. Only the
-- entries that bound an older checkpoint are kept (lengths increase along
-- the list). A checkpoint saved in epoch c still has its first m messages
-- iff m <= n of the first entry with e > c (and of course m <= the count):
-- otherwise restoring it is refused, because messages appended after an
-- earlier restore would stand in for the ones it saw.
-- Staged changes (KEYS[5]) are discarded: they were made on the timeline
-- the restore abandons. Checkpoints, the status and the other state fields
-- stay as they are.
--
-- Event: "restored" with id, step and count (message count).
--        Appended to the event log KEYS[8] (lib_fence.lua fk_event).
-- Reply: {version, message_count, msg_epoch}
-- Errors: FENCEKIT_STALE, FENCEKIT_NOT_HOLDER, FENCEKIT_CORRUPT (lib_fence.lua);
--         FENCEKIT_NOT_FOUND state (no session); FENCEKIT_NOT_FOUND checkpoint <id>;
--         FENCEKIT_NOT_FOUND messages <needed> <intact> (the checkpoint's
--         messages were trimmed away by an earlier restore);
--         FENCEKIT_CORRUPT <key>; FENCEKIT_BADARG <arg>; WRONGTYPE.
--         All before the first write.
-- Retryable: no. A retry after a lost reply bumps the version again.
-- Include: lib_base.lua
-- Include: lib_fence.lua

local tok, e1 = fk_check(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if not tok then return e1 end
local ttl, e2 = fk_int(ARGV[3], 'ttl')
if not ttl then return e2 end
local version, e3 = fk_version(KEYS[3])
if not version then return e3 end
if redis.call('EXISTS', KEYS[3]) == 0 then return redis.error_reply('FENCEKIT_NOT_FOUND state') end
local p = redis.call('HGET', KEYS[7], ARGV[4])
if not p then return redis.error_reply('FENCEKIT_NOT_FOUND checkpoint ' .. ARGV[4]) end
local hdr, step, mc, ep, slen = string.match(p, '^(cp1 %d+ %d+ %d+ (%d+) (%d+) (%d+) (%d+)\n)')
step, mc, ep, slen = fk_num(step), fk_num(mc), fk_num(ep), fk_num(slen)
if not hdr or not step or not mc or not ep or not slen or #p < #hdr + slen then
  return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[7])
end
local st = redis.call('HMGET', KEYS[3], 'msg_epoch', 'msg_trims')
local epoch, trims = fk_num(st[1] or '0'), st[2] or ''
if not epoch or ep > epoch or not string.match(trims, '^[%d:,]*$') then
  return redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[3])
end
local have = redis.call('LLEN', KEYS[4])
local intact = have
if ep < epoch then
  for e, n in string.gmatch(trims, '(%d+):(%d+)') do
    if tonumber(e) > ep then
      intact = math.min(intact, tonumber(n))
      break
    end
  end
end
if mc > intact then
  return redis.error_reply('FENCEKIT_NOT_FOUND messages ' .. fk_fmt(mc) .. ' ' .. fk_fmt(intact))
end
redis.call('HLEN', KEYS[5]) -- WRONGTYPE before any write
local _, now_ms = fk_now()

if FK_LOG then redis.call('XLEN', KEYS[8]) end -- the event log: WRONGTYPE before any write

-- Every precondition holds; writes start here.
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[3], 'data', string.sub(p, #hdr + 1, #hdr + slen), 'step', fk_fmt(step))
if mc < have then
  if mc == 0 then
    redis.call('DEL', KEYS[4])
  else
    redis.call('LTRIM', KEYS[4], 0, mc - 1)
  end
  epoch = epoch + 1
  local kept = {}
  for e, n in string.gmatch(trims, '(%d+):(%d+)') do
    if tonumber(n) < mc then kept[#kept + 1] = e .. ':' .. n end
  end
  kept[#kept + 1] = fk_fmt(epoch) .. ':' .. fk_fmt(mc)
  redis.call('HSET', KEYS[3], 'msg_epoch', fk_fmt(epoch), 'msg_trims', table.concat(kept, ','))
end
local v = fk_stamp(KEYS[3], ARGV[1], version, now_ms)
fk_event('restored', v, ARGV[1], 'id', ARGV[4], 'step', fk_fmt(step), 'count', fk_fmt(mc))
fk_touch(ttl)
return {v, mc, epoch}
