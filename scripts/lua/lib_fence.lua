-- lib_fence.lua: the fence check and bookkeeping of every session write
-- (DESIGN §5). Not a script of its own: scripts that name it in an
-- "Include:" header line get it prepended, after lib_base.lua.
--
-- Session scripts share a layout:
--   KEYS[1] lock record, KEYS[2] lock fence counter (both of the lock named
--   after the session), KEYS[3] state hash, then the session's other data
--   keys (see fk_data_keys).
--   ARGV[1] token, ARGV[2] mode ("S" strict, "R" relaxed), ARGV[3] session
--   ttl in ms ("0": keys keep their ttl).
--
-- Error replies:
--   FENCEKIT_STALE <presented> <highest>   a newer token was issued or accepted
--   FENCEKIT_NOT_HOLDER <presented> <holder token, "" if none>
--                                          strict mode: the lock record does not carry the token
--   FENCEKIT_CORRUPT <key>                 a lock record, fence or state field fencekit did not write

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
  if mode ~= 'S' and mode ~= 'R' then return nil, redis.error_reply('FENCEKIT_BADARG mode') end
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

-- fk_touch gives every data key of the session (KEYS[3] onwards) the
-- session ttl; ttl 0 leaves them as they are.
local function fk_touch(ttl)
  if ttl == 0 then return end
  for i = 3, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- fk_event appends one event to the session's event log (KEYS[8], a
-- stream): fields "type" <typ>, "v" <version> (the state version the
-- transition produced), "tok" <token> (the token the write was accepted
-- with), then the name/value pairs in ... . A write: call it only after
-- every precondition holds, in the same script as the transition, so the
-- log and the state never disagree. Lock events are written by the lock
-- scripts (lib_lock.lua, fk_lockev).
local function fk_event(typ, version, tok, ...)
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', FK_EVENTS_MAXLEN, '*',
    'type', typ, 'v', fk_fmt(version), 'tok', tok, ...)
end
