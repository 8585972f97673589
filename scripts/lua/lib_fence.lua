-- lib_fence.lua: the fence check and bookkeeping of every session write
-- (DESIGN §5). Not a script of its own: scripts that name it in an
-- "Include:" header line get it prepended, after lib_base.lua.
--
-- Session scripts share a layout:
--   KEYS[1] lock record, KEYS[2] lock fence counter (both of the lock named
--   after the session), KEYS[3] state hash, then the session's other data
--   keys (see fk_data_keys).
--   ARGV[1] token, ARGV[2] mode ("S" strict, "R" relaxed; "SQ", "RQ": the
--   same without the session's event log, statestore.Options.EventLog
--   off), ARGV[3] session ttl in ms ("0": keys keep their ttl).
--
-- Error replies:
--   FENCEKIT_STALE <presented> <highest>   a newer token was issued or accepted
--   FENCEKIT_NOT_HOLDER <presented> <holder token, "" if none>
--                                          strict mode: the lock record does not carry the token
--   FENCEKIT_CORRUPT <key>                 a lock record, fence or state field fencekit did not write

-- FK_LOG says whether this call keeps the session's event log (KEYS[8]):
-- fk_check sets it from the mode ("SQ"/"RQ": no). Without the log,
-- fk_event and fk_event_first write nothing and scripts skip their
-- WRONGTYPE check of the log.
local FK_LOG = true

-- fk_check validates token and mode and checks the fence. It returns the
-- token as a number, or nil and an error reply. Read-only.
--   both:    no newer token may have been issued for the lock (its fence
--            counter), accepted by the session (the state's fence) or be
--            held right now (the lock record); otherwise STALE. The
--            record is checked in relaxed mode too: the fence counter can
--            expire (Options.FenceTTL) while a newer holder that has not
--            written yet still holds the lock, and the record is then the
--            only trace of its token;
--   strict:  the lock record must also exist and carry the token
--            (otherwise NOT_HOLDER: the lease ended or was never granted).
local function fk_check(lockk, fencek, statek, tok, mode)
  local t = fk_num(tok)
  if not t or t == 0 then return nil, redis.error_reply('FENCEKIT_BADARG token') end
  if mode == 'SQ' or mode == 'RQ' then
    FK_LOG = false
    mode = string.sub(mode, 1, 1)
  elseif mode ~= 'S' and mode ~= 'R' then
    return nil, redis.error_reply('FENCEKIT_BADARG mode')
  end
  local f = redis.call('GET', fencek)
  if f then
    local fn = fk_num(f)
    if not fn then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. fencek) end
    if fn > t then return nil, redis.error_reply('FENCEKIT_STALE ' .. tok .. ' ' .. f) end
  end
  local sf = redis.call('HGET', statek, 'fence')
  if sf then
    local sn = fk_num(sf)
    if not sn then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. statek) end
    if sn > t then return nil, redis.error_reply('FENCEKIT_STALE ' .. tok .. ' ' .. sf) end
  end
  local rec = redis.call('GET', lockk)
  if not rec then
    if mode == 'S' then return nil, redis.error_reply('FENCEKIT_NOT_HOLDER ' .. tok .. ' ') end
    return t
  end
  local rt = fk_record(rec)
  if not rt then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. lockk) end
  local rn = fk_num(rt)
  if rn > t then return nil, redis.error_reply('FENCEKIT_STALE ' .. tok .. ' ' .. rt) end
  if mode == 'S' and rn ~= t then return nil, redis.error_reply('FENCEKIT_NOT_HOLDER ' .. tok .. ' ' .. rt) end
  return t
end

-- fk_version reads the state's version (0 when there is no state); nil and
-- an error reply when it is corrupt. Read-only.
local function fk_version(statek)
  local v = redis.call('HGET', statek, 'version')
  if not v then return 0 end
  local n = fk_num(v)
  if not n then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. statek) end
  return n
end

-- fk_stamp records an accepted write on the state hash: the token, the
-- time, and version + 1, which it returns.
local function fk_stamp(statek, tok, version, now_ms)
  redis.call('HSET', statek, 'fence', tok, 'version', fk_fmt(version + 1), 'updated_at', fk_fmt(now_ms))
  return version + 1
end

-- Session TTLs. Every fenced write keeps the whole session alive: after it,
-- every key of the session expires at one common deadline, at least ttl
-- and at most ttl + ttl/100 (fk_ttl_slack) from now. A refresh gives every
-- data key ttl + slack; a write that finds the state's own ttl already in
-- [ttl, ttl + slack] skips the refresh, since every key shares that
-- deadline, and gives only the keys it may have created (and the event
-- log, which a lock event may have created with a ttl of its own) the
-- state's remaining ttl. So a session written more often than every
-- ttl/100 pays one PTTL and a few PEXPIREs per write instead of one
-- PEXPIRE per key (issue 13: the refresh was 5-8 us of Redis CPU).

-- fk_ttl_slack is how much longer than ttl a refresh lets keys live.
local function fk_ttl_slack(ttl)
  return math.floor(ttl / 100)
end

-- fk_session_pttl returns the state's remaining ttl when it needs no
-- refresh for a session ttl of ttl (it lies in [ttl, ttl + slack]); nil
-- otherwise (no state, no ttl, too short, or too long: ttl was lowered).
local function fk_session_pttl(ttl)
  local p = redis.call('PTTL', KEYS[3])
  if p >= ttl and p <= ttl + fk_ttl_slack(ttl) then return p end
  return nil
end

-- fk_touch keeps the session alive after a write: the data keys KEYS[3]
-- onwards get the session ttl (see above). ... are the indices in KEYS of
-- the keys the write may have created besides the state and the event
-- log (KEYS[8]). ttl 0 leaves every key as it is.
local function fk_touch(ttl, ...)
  if ttl == 0 then return end
  local p = fk_session_pttl(ttl)
  if p then
    redis.call('PEXPIRE', KEYS[8], p)
    for _, i in ipairs({...}) do redis.call('PEXPIRE', KEYS[i], p) end
    return
  end
  local t = ttl + fk_ttl_slack(ttl)
  for i = 3, #KEYS do redis.call('PEXPIRE', KEYS[i], t) end
end

-- fk_event_at is fk_event with an explicit entry id ("*": the server's).
local function fk_event_at(id, typ, version, tok, ...)
  if not FK_LOG then return end
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', FK_EVENTS_MAXLEN, id,
    'type', typ, 'v', fk_fmt(version), 'tok', tok,
    'inc', redis.call('HGET', KEYS[3], 'inc') or '0', ...)
end

-- fk_event appends one event to the session's event log (KEYS[8], a
-- stream): fields "type" <typ>, "v" <version> (the state version the
-- transition produced), "tok" <token> (the token the write was accepted
-- with), then the name/value pairs in ... . A write: call it only after
-- every precondition holds, in the same script as the transition, so the
-- log and the state never disagree. Lock events are written by the lock
-- scripts (lib_lock.lua, fk_lockev).
--
-- Every event also carries "inc", the session's incarnation (state field
-- inc, see fk_incarnation below). The first event of an incarnation goes
-- through fk_event_first, which keeps ids growing across Delete.
local function fk_event(typ, version, tok, ...)
  fk_event_at('*', typ, version, tok, ...)
end

-- Incarnations (issue 19). A session deleted and created again under the
-- same id is a new session: every position a reader keeps (message and
-- checkpoint cursors, event ids, output stream positions, a promote's read)
-- names the incarnation it was issued in, and the scripts refuse one from
-- another incarnation with
--   FENCEKIT_REPLACED <current incarnation>
-- The incarnation is the state field inc, minted when the state is created:
--   inc = max(previous inc + 1, server time in µs, (floor + 1) * 1000)
-- where "previous inc" and "floor" come from the session's inc key (KEYS[11]),
-- the one key Delete writes instead of deleting: floor is a time in ms at
-- or above the id of every entry of the deleted event log and output
-- stream. Entries of the new incarnation get ids of at least
-- floor(inc / 1000) ms (fk_base_ms), so ids keep growing across Delete even
-- when Delete and Create fall in one millisecond, and two creates never
-- share an incarnation. The inc key carries the session ttl: once it is
-- gone, the server time alone keeps both growing.

-- fk_incarnation reads the state's incarnation ("0": a state written before
-- incarnations existed, or none); nil and an error reply when corrupt.
-- Read-only.
local function fk_incarnation(statek)
  local inc = redis.call('HGET', statek, 'inc')
  if not inc then return '0' end
  if not fk_num(inc) then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. statek) end
  return inc
end

-- fk_inc_record reads what the inc key keeps: the last incarnation and the
-- id floor in ms (0 and 0 without the key); nil and an error reply when
-- corrupt. Read-only (raises WRONGTYPE for a key of another type).
local function fk_inc_record(inck)
  local r = redis.call('HMGET', inck, 'inc', 'floor')
  local inc, floor = fk_num(r[1] or '0'), fk_num(r[2] or '0')
  if not inc or not floor then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. inck) end
  return inc, floor
end

-- fk_mint_incarnation returns the incarnation of a state about to be
-- created (see above); nil and an error reply when the inc key is corrupt.
-- Read-only.
local function fk_mint_incarnation(inck, now_us)
  local prev, floor = fk_inc_record(inck)
  if not prev then return nil, floor end
  local inc = math.max(prev + 1, now_us, (floor + 1) * 1000)
  if inc > FK_MAX then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. inck) end
  return inc
end

-- fk_base_ms returns the least ms an entry id of the session's current
-- incarnation may carry: floor(inc / 1000) with a state, the inc key's
-- floor + 1 without one (after a Delete), else 0. nil and an error reply
-- when corrupt. Read-only.
local function fk_base_ms(statek, inck)
  local inc, e = fk_incarnation(statek)
  if not inc then return nil, e end
  if inc ~= '0' then return math.floor(fk_num(inc) / 1000) end
  local _, floor = fk_inc_record(inck)
  if not _ then return nil, floor end
  if floor > 0 then return floor + 1 end
  return 0
end

-- fk_id_ms returns the ms part of a stream entry id ("<ms>-<n>"); nil when
-- it is not one.
local function fk_id_ms(id)
  return fk_num(string.match(id or '', '^(%d+)%-%d+$'))
end

-- fk_event_first appends the first event of a new incarnation, with an id
-- of at least fk_base_ms, above every id of the log Delete removed. A log
-- that exists already (lock events appended since the Delete, or a log
-- left by an expired state) may end below that: the event then still gets
-- an id at the base; one that ends at or above it gives the server's next
-- id. Call it before any other write to the log (the created state
-- written).
local function fk_event_first(typ, version, tok, now_ms, ...)
  if not FK_LOG then return end
  local ms = math.max(now_ms, fk_base_ms(KEYS[3], KEYS[11]) or 0)
  local id = fk_fmt(ms) .. '-1'
  local top = redis.call('XREVRANGE', KEYS[8], '+', '-', 'COUNT', 1)
  if #top > 0 and (fk_id_ms(top[1][1]) or 0) >= ms then id = '*' end
  fk_event_at(id, typ, version, tok, ...)
end
