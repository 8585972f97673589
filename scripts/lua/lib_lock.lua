-- lib_lock.lua: helpers shared by the lock scripts. Not a script of its own:
-- scripts that name it in an "Include:" header line get it prepended.
--
-- Lock record (string at the lock key): "<token>|<acquired_at_ms>|<owner>|<attempt>".
-- The holder of a lock is "<owner>|<attempt>"; tokens are decimal strings
-- written with string.format('%.0f'), never tostring() (which prints 1.8e+15).
-- Wait queue: zset KEYS[3] (member holder, score arrival in µs) and hash
-- KEYS[4] (holder -> "<alive_until_ms>|<ttl_ms>"); an entry whose alive_until
-- has passed belongs to a waiter that stopped polling and is skipped.

local function fk_int(s, what)
  local n = tonumber(s)
  if n == nil or n ~= math.floor(n) or n < 0 or n > 9007199254740991 then
    return nil, redis.error_reply('FENCEKIT_BADARG ' .. what)
  end
  return n
end

local function fk_fmt(n)
  return string.format('%.0f', n)
end

local function fk_now()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return us, math.floor(us / 1000)
end

-- fk_record parses a lock record; nil when it is not one.
local function fk_record(rec)
  return string.match(rec, '^([1-9]%d*)|(%d+)|(.+|.+)$')
end

-- fk_fence reads the fence counter; nil plus an error reply when it is corrupt.
local function fk_fence(key)
  local f = redis.call('GET', key)
  if not f then return 0 end
  local n = tonumber(f)
  if n == nil or not string.match(f, '^%d+$') then
    return nil, redis.error_reply('FENCEKIT_CORRUPT fence ' .. key)
  end
  return n
end

-- fk_head finds the longest-waiting live waiter other than skip. Read-only:
-- it returns the head, its ttl, and the dead entries seen before it.
local function fk_head(q, qi, now_ms, skip)
  local ids = redis.call('ZRANGE', q, 0, 15)
  local dead = {}
  if #ids == 0 then return nil, nil, dead, 0 end
  local infos = redis.call('HMGET', qi, unpack(ids))
  for i, h in ipairs(ids) do
    local alive, ttl
    if infos[i] then alive, ttl = string.match(infos[i], '^(%d+)|(%d+)$') end
    if h ~= skip and alive and tonumber(alive) >= now_ms and tonumber(ttl) > 0 then
      return h, tonumber(ttl), dead, #ids
    end
    if h ~= skip then dead[#dead + 1] = h end
  end
  return nil, nil, dead, #ids
end

local function fk_dequeue(q, qi, holders)
  if #holders > 0 then
    redis.call('ZREM', q, unpack(holders))
    redis.call('HDEL', qi, unpack(holders))
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

-- fk_announce tells waiters on channel (by PUBLISH, or SPUBLISH when mode is
-- "S") that holder was handed the lock, unless holder starts with local:
-- the caller's own process delivers those hand-offs in memory.
local function fk_announce(channel, mode, local_prefix, holder)
  if channel == '' then return end
  if local_prefix ~= '' and string.sub(holder, 1, #local_prefix) == local_prefix then return end
  if mode == 'S' then
    redis.call('SPUBLISH', channel, holder)
  else
    redis.call('PUBLISH', channel, holder)
  end
end

-- fk_grant mints the next token, max(fence + 1, now in µs), and writes the
-- lock record for holder. It must only run after every precondition holds.
local function fk_grant(lock, fence, fence_val, fence_ttl, holder, ttl, now_us, now_ms)
  local tok = now_us
  if fence_val + 1 > tok then tok = fence_val + 1 end
  local s = fk_fmt(tok)
  if fence_ttl > 0 then
    redis.call('SET', fence, s, 'PX', fence_ttl)
  else
    redis.call('SET', fence, s)
  end
  redis.call('SET', lock, s .. '|' .. fk_fmt(now_ms) .. '|' .. holder, 'PX', ttl)
  return s
end
