-- lib_base.lua: helpers shared by every fencekit script. Not a script of
-- its own: scripts that name it in an "Include:" header line get it
-- prepended.

-- FK_MAX is fencing.MaxToken, 2^53-1: the largest integer a Lua number
-- (a double) holds exactly. No token, time or ttl may exceed it.
local FK_MAX = 9007199254740991

-- FK_EVENTS_MAXLEN bounds a session's event log (XADD MAXLEN ~): the log
-- keeps about the newest FK_EVENTS_MAXLEN events.
local FK_EVENTS_MAXLEN = 10000

-- fk_num parses a decimal integer in [0, FK_MAX] written with digits only;
-- nil otherwise. tonumber alone would also take " 5", "0x10", "5.0" and
-- "1e3" (the last one on Redis but not on every Lua implementation).
local function fk_num(s)
  if type(s) ~= 'string' or #s > 16 or not string.match(s, '^%d+$') then return nil end
  local n = tonumber(s)
  if n == nil or n > FK_MAX then return nil end
  return n
end

-- fk_int parses an integer argument; nil plus an error reply when it is
-- not one.
local function fk_int(s, what)
  local n = fk_num(s)
  if n == nil then
    return nil, redis.error_reply('FENCEKIT_BADARG ' .. what)
  end
  return n
end

-- fk_flag parses a "0"/"1" argument (dflt when absent); nil plus an error
-- reply otherwise.
local function fk_flag(s, what, dflt)
  if s == nil then s = dflt end
  if s ~= '0' and s ~= '1' then
    return nil, redis.error_reply('FENCEKIT_BADARG ' .. what)
  end
  return s == '1'
end

local function fk_fmt(n)
  return string.format('%.0f', n)
end

local function fk_now()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return us, math.floor(us / 1000)
end

-- fk_record parses a lock record; nil when it is not one (also when its
-- token or time is beyond FK_MAX: fencekit never writes those).
local function fk_record(rec)
  local tok, at, h = string.match(rec, '^([1-9]%d*)|(%d+)|(.+|.+)$')
  if not tok or not fk_num(tok) or not fk_num(at) then return nil end
  return tok, at, h
end
