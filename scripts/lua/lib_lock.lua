-- lib_lock.lua: helpers shared by the lock scripts. Not a script of its own:
-- scripts that name it in an "Include:" header line get it prepended, after
-- lib_base.lua, which it needs.
--
-- Lock record (string at the lock key): "<token>|<acquired_at_ms>|<owner>|<attempt>".
-- The holder of a lock is "<owner>|<attempt>"; tokens are decimal strings
-- written with string.format('%.0f'), never tostring() (which prints 1.8e+15).
-- Wait queue: zset KEYS[3] (member holder, score arrival in µs) and hash
-- KEYS[4] (holder -> "<alive_until_ms>|<ttl_ms>"); an entry whose alive_until
-- has passed belongs to a waiter that stopped polling and is skipped.

-- fk_mode parses the announcement mode: "S" (SPUBLISH) or "P" (PUBLISH,
-- also when absent); nil plus an error reply otherwise.
local function fk_mode(s, what)
  if s == nil then s = 'P' end
  if s ~= 'S' and s ~= 'P' then
    return nil, redis.error_reply('FENCEKIT_BADARG ' .. what)
  end
  return s
end

-- fk_fence reads the fence counter; nil plus an error reply when it is
-- corrupt. A fence at FK_MAX counts as corrupt too: no token is left above
-- it (and fence + 1 beyond 2^53 would round back to a token already issued).
local function fk_fence(key)
  local f = redis.call('GET', key)
  if not f then return 0 end
  local n = fk_num(f)
  if n == nil or n >= FK_MAX then
    return nil, redis.error_reply('FENCEKIT_CORRUPT fence ' .. key)
  end
  return n
end

-- fk_head finds the longest-waiting live waiter other than skip. self (the
-- caller of acquire, which is polling right now) counts as live whatever its
-- entry says. Read-only: it returns the head, its ttl (nil for self), the
-- dead entries seen before it, and how many entries it looked at (0 when
-- the queue is empty). It pages through the queue until it finds a live
-- waiter, so any number of dead entries cannot hide one; the dead entries
-- it returns are then removed, so each is paged over once.
local function fk_head(q, qi, now_ms, skip, self)
  local dead, seen = {}, 0
  while true do
    local ids = redis.call('ZRANGE', q, seen, seen + 15)
    if #ids == 0 then return nil, nil, dead, seen end
    local infos = redis.call('HMGET', qi, unpack(ids))
    for i, h in ipairs(ids) do
      if h == self then return h, nil, dead, seen + i end
      local alive, ttl
      if infos[i] then alive, ttl = string.match(infos[i], '^(%d+)|(%d+)$') end
      alive, ttl = fk_num(alive), fk_num(ttl)
      if h ~= skip and alive and alive >= now_ms and ttl and ttl > 0 then
        return h, ttl, dead, seen + i
      end
      if h ~= skip then dead[#dead + 1] = h end
    end
    seen = seen + #ids
    if #ids < 16 then return nil, nil, dead, seen end
  end
end

-- fk_dequeue removes holders from the wait queue, in chunks that unpack
-- can pass as arguments.
local function fk_dequeue(q, qi, holders)
  for i = 1, #holders, 1000 do
    local j = math.min(i + 999, #holders)
    redis.call('ZREM', q, unpack(holders, i, j))
    redis.call('HDEL', qi, unpack(holders, i, j))
  end
end

local function fk_enqueue(q, qi, holder, ttl, lease, now_us, now_ms)
  redis.call('ZADD', q, 'NX', now_us, holder)
  redis.call('HSET', qi, holder, fk_fmt(now_ms + lease) .. '|' .. fk_fmt(ttl))
  local keep = lease * 2
  if redis.call('PTTL', q) < keep then
    redis.call('PEXPIRE', q, keep)
    redis.call('PEXPIRE', qi, keep)
  end
end

-- fk_mint returns the next token, max(fence + 1, now in µs), as a string.
local function fk_mint(fence_val, now_us)
  local tok = now_us
  if fence_val + 1 > tok then tok = fence_val + 1 end
  return fk_fmt(tok)
end

-- fk_announce tells waiters on channel (by PUBLISH, or SPUBLISH when mode is
-- "S") that holder was handed the lock with token tok for ttl ms; the
-- message is "<holder> <token> <ttl_ms>" (holders contain no spaces). It is
-- skipped when holder starts with local: the caller's own process delivers
-- those hand-offs in memory.
--
-- A notice is not a grant: a waiter acts on it as on a written grant, so
-- scripts announce only after every write of the hand-off has succeeded.
-- Redis checks a script without a shebang for writability (OOM, READONLY,
-- NOREPLICAS, MISCONF) at its first write, and a PUBLISH before that would
-- go out even when the writes are then refused. After the writes nothing
-- may fail the script any more (it would report an error for writes that
-- stay done), so the notice is sent under pcall: a SPUBLISH the server
-- refuses (Redis Cluster, a channel of another node's slot; a server
-- without sharded pub/sub) is dropped and the waiter finds the grant at
-- its next look, at most RetryInterval later. It returns false then.
local function fk_announce(channel, mode, local_prefix, holder, tok, ttl)
  if channel == '' then return true end
  if local_prefix ~= '' and string.sub(holder, 1, #local_prefix) == local_prefix then return true end
  local msg = holder .. ' ' .. tok .. ' ' .. fk_fmt(ttl)
  local cmd = 'PUBLISH'
  if mode == 'S' then cmd = 'SPUBLISH' end
  local ok = pcall(redis.call, cmd, channel, msg)
  return ok
end

-- Lock events (lock.Options.EventLog). A lock script called with six keys
-- logs its transitions to KEYS[5], the event log of the session named like
-- the lock (the stream the session scripts write with fk_event), and keeps
-- the open grant "<token>|<holder>" in KEYS[6]: the last grant that was
-- neither released nor found expired yet. With four keys nothing is
-- logged and KEYS[5], KEYS[6] are never touched. Each event has "type",
-- "v" "0" (lock events produce no state version), "tok" (the token it
-- concerns) and "holder" ("<owner>|<attempt>"):
--   lock_acquired        a grant, to the caller or handed over; + ttl
--   lock_released        the holder released
--   lock_lost            the open grant's record had expired when a later
--                        lock script found the lock free; + cause "expired"
--   lock_force_released  an operator took the lock (force_release.lua);
--                        tok is the new fence, holder/holder_tok the holder
--                        removed ("" if none); + reason, by

-- FK_LOCKEV_TTL is the lifetime, in ms, given to an event log that a lock
-- event creates when the lock keeps its fence forever (fence ttl 0): no
-- key fencekit writes lives forever unless the caller asked for it, and a
-- caller that keeps its fence forever asked that of the fence only.
local FK_LOCKEV_TTL = 86400000

-- fk_lockev_new is true while the event log does not exist yet (set by
-- fk_lockev_open); fk_lockev_keep is the lifetime fk_lockev gives it when
-- it creates it. A log that exists keeps whatever TTL its session gave
-- it (none when the session was created without one).
local fk_lockev_new, fk_lockev_keep = false, FK_LOCKEV_TTL

-- fk_lockev_floor is the id floor (ms) of the session's inc key, KEYS[7]
-- when the caller declares it (lock events, issue 19): after a Delete of
-- the session, every id of the deleted log is at or below it. The first
-- lock event of the script gets an id above it (fk_lockev), so a reader
-- that kept the deleted log's last id never skips it, even when Delete
-- and the lock event fall in one millisecond. 0 once an event is written,
-- or without the key.
local fk_lockev_floor = 0

-- fk_lockev_open checks the event log's type and reads the open grant:
-- false when there is none or events are off, {token, holder} when there
-- is, nil plus an error reply when the grant key (or the session's inc
-- key) holds something fencekit did not write. fence_ttl is the lock's
-- fence ttl in ms (0: none): an event log that a lock event creates lives
-- that long (FK_LOCKEV_TTL when 0), like the fence and the open grant.
-- Read-only: call it before the first write.
local function fk_lockev_open(fence_ttl)
  if not KEYS[6] then return false end
  redis.call('XLEN', KEYS[5]) -- WRONGTYPE before any write
  fk_lockev_new = redis.call('EXISTS', KEYS[5]) == 0
  if fence_ttl > 0 then fk_lockev_keep = fence_ttl end
  if KEYS[7] then
    local f = redis.call('HGET', KEYS[7], 'floor') -- WRONGTYPE before any write
    if f then
      local n = fk_num(f)
      if not n then return nil, redis.error_reply('FENCEKIT_CORRUPT ' .. KEYS[7]) end
      fk_lockev_floor = n
    end
  end
  local g = redis.call('GET', KEYS[6])
  if not g then return false end
  local tok, h = string.match(g, '^([1-9]%d*)|([^|]+|[^|]+)$')
  if not tok or not fk_num(tok) then
    return nil, redis.error_reply('FENCEKIT_CORRUPT grant ' .. KEYS[6])
  end
  return {tok, h}
end

-- fk_lockev appends one lock event (events on only), and gives the log a
-- lifetime when this event created it. Its id is the server's next one,
-- except for the first event above a Delete's id floor (fk_lockev_floor)
-- in a log that ends below it (or is empty): that one gets the id
-- "<max(now, floor + 1)>-1".
local function fk_lockev(typ, tok, holder, ...)
  local id = '*'
  if fk_lockev_floor > 0 then
    local base = fk_lockev_floor + 1
    local top = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
    local top_ms = #top > 0 and fk_num(string.match(top[1][1], '^(%d+)%-%d+$')) or 0
    if top_ms < base then
      local _, now_ms = fk_now()
      id = fk_fmt(math.max(now_ms, base)) .. '-1'
    end
    fk_lockev_floor = 0
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', FK_EVENTS_MAXLEN, id,
    'type', typ, 'v', '0', 'tok', tok, 'holder', holder, ...)
  if fk_lockev_new then
    redis.call('PEXPIRE', KEYS[5], fk_lockev_keep)
    fk_lockev_new = false
  end
end

-- fk_lockev_close logs the end of a grant (typ lock_released or lock_lost)
-- and clears the open grant. A no-op when events are off.
local function fk_lockev_close(typ, tok, holder, ...)
  if not KEYS[6] then return end
  fk_lockev(typ, tok, holder, ...)
  redis.call('DEL', KEYS[6])
end

-- fk_lockev_lost logs the loss of open (from fk_lockev_open), a grant
-- whose lock record expired before anyone released it.
local function fk_lockev_lost(open)
  if open then fk_lockev_close('lock_lost', open[1], open[2], 'cause', 'expired') end
end

-- fk_set_fenced sets key to val with the fence counter's ttl (fence_ttl
-- ms; 0: no expiry). A write.
local function fk_set_fenced(key, val, fence_ttl)
  if fence_ttl > 0 then
    redis.call('SET', key, val, 'PX', fence_ttl)
  else
    redis.call('SET', key, val)
  end
end

-- fk_grant writes token tok (from fk_mint) to the fence and the lock
-- record for holder, and logs the grant when events are on. It must only
-- run after every precondition holds.
local function fk_grant(lock, fence, fence_ttl, tok, holder, ttl, now_ms)
  fk_set_fenced(fence, tok, fence_ttl)
  redis.call('SET', lock, tok .. '|' .. fk_fmt(now_ms) .. '|' .. holder, 'PX', ttl)
  if KEYS[6] then
    fk_lockev('lock_acquired', tok, holder, 'ttl', fk_fmt(ttl))
    local keep = fence_ttl
    if keep == 0 then keep = FK_LOCKEV_TTL end
    redis.call('SET', KEYS[6], tok .. '|' .. holder, 'PX', keep)
  end
  return tok
end
