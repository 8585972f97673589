-- mem_list.lua: read a page of a scope's memory records, newest first.
--
-- KEYS[1] scope index "<base>sx:<scope>" (zset id -> created ms)
-- ARGV[1] base "<prefix>:{mem:<root>}:", ARGV[2] cursor created ms ("" for
-- the first page), ARGV[3] cursor id, ARGV[4] limit (>= 1)
--
-- Order: created ms descending, then id descending, ids compared byte by
-- byte (as the zset orders members of equal score; Lua's < would compare
-- with the server's locale). The page holds the index entries after the
-- cursor (created, id); their records are read with HMGET (fields id scope
-- text vec cats meta imp ts exp). Entries whose record is gone (expired)
-- come back with all fields nil; the caller drops them and any record
-- whose scope is not the listed one.
--
-- Reply: {more (0|1), last created ms, last id, then per entry the 9 fields}
-- Errors: FENCEKIT_BADARG <arg>; WRONGTYPE.
-- Retryable: yes (read-only)
-- ReadOnly: yes
-- Include: lib_base.lua

-- mem_bytes_lt reports whether a sorts before b byte by byte.
local function mem_bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local base = ARGV[1]
local limit, e = fk_int(ARGV[4], 'limit')
if not limit then return e end
if limit < 1 then return redis.error_reply('FENCEKIT_BADARG limit') end
local want = limit + 1
local ids, scores = {}, {}
if ARGV[2] == '' then
  local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, want)
  for i = 1, #r, 2 do ids[#ids + 1] = r[i]; scores[#scores + 1] = r[i + 1] end
else
  local ts, e2 = fk_int(ARGV[2], 'cursor')
  if not ts then return e2 end
  local r = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[2], 'WITHSCORES')
  for i = 1, #r, 2 do
    if #ids < want and mem_bytes_lt(r[i], ARGV[3]) then ids[#ids + 1] = r[i]; scores[#scores + 1] = r[i + 1] end
  end
  if #ids < want then
    r = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, want - #ids)
    for i = 1, #r, 2 do ids[#ids + 1] = r[i]; scores[#scores + 1] = r[i + 1] end
  end
end
local more = 0
if #ids > limit then more = 1; ids[#ids] = nil; scores[#scores] = nil end
local out = {more, scores[#scores] or '', ids[#ids] or ''}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', base .. 'r:' .. id, 'id', 'scope', 'text', 'vec', 'cats', 'meta', 'imp', 'ts', 'exp')
  for j = 1, 9 do out[#out + 1] = f[j] end
end
return out
