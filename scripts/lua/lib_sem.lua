-- lib_sem.lua: helpers shared by the semaphore scripts. Not a script of its
-- own: scripts that name it in an "Include:" header line get it prepended,
-- after lib_base.lua and lib_lock.lua, which it needs.
--
-- Holders: zset KEYS[1] (member holder "<owner>|<attempt>", score the end of
-- its lease in ms, server clock) and hash KEYS[2] (holder ->
-- "<token>|<permits>|<acquired_at_ms>"). A holder whose score has passed has
-- lost its permits: every script sweeps it before it counts.
-- Wait queue: zset KEYS[3] (member holder, score arrival in µs) and hash
-- KEYS[4] (holder -> "<alive_until_ms>|<ttl_ms>|<permits>"); an entry whose
-- alive_until has passed belongs to a waiter that stopped polling.
-- Limit: string KEYS[6], the permits of the name set by SetLimit; callers
-- pass their configured limit for when it is absent.

-- fk_sem_limit reads the stored limit, or dflt when there is none; nil
-- plus an error reply when the key holds something else.
local function fk_sem_limit(key, dflt)
  local v = redis.call('GET', key)
  if not v then return dflt end
  local n = fk_num(v)
  if not n or n == 0 then return nil, redis.error_reply('FENCEKIT_CORRUPT limit ' .. key) end
  return n
end

-- fk_sem_info parses a holder's info "<token>|<permits>|<at_ms>".
local function fk_sem_info(s)
  if not s then return nil end
  local tok, n, at = string.match(s, '^([1-9]%d*)|([1-9]%d*)|(%d+)$')
  if not tok or not fk_num(tok) or not fk_num(n) or not fk_num(at) then return nil end
  return tok, tonumber(n), tonumber(at)
end

-- fk_sem_holders reads the holders. Read-only: it returns the permits held
-- by live holders other than skip, the holders to sweep (expired ones, and
-- skip), and the ms until the soonest live lease ends (0: none); nil plus
-- an error reply when a holder's info is not fencekit's.
local function fk_sem_holders(h, hi, now_ms, skip)
  local all = redis.call('ZRANGE', h, 0, -1, 'WITHSCORES')
  local used, sweep, soonest, live = 0, {}, 0, {}
  for i = 1, #all, 2 do
    local holder, exp = all[i], tonumber(all[i + 1])
    if holder == skip or exp <= now_ms then
      sweep[#sweep + 1] = holder
    else
      live[#live + 1] = holder
      if soonest == 0 or exp - now_ms < soonest then soonest = exp - now_ms end
    end
  end
  for i = 1, #live, 1000 do
    local j = math.min(i + 999, #live)
    local infos = redis.call('HMGET', hi, unpack(live, i, j))
    for k = 1, #infos do
      local tok, n = fk_sem_info(infos[k])
      if not tok then return nil, redis.error_reply('FENCEKIT_CORRUPT holder ' .. hi) end
      used = used + n
    end
  end
  return used, sweep, soonest
end

-- fk_sem_plan walks the wait queue in arrival order and decides who gets
-- permits: each live waiter in turn while its request fits in free; the
-- first one that does not fit stops the walk (FIFO: nobody overtakes it).
-- self (the caller of acquire, polling right now) counts as live with
-- self_n permits and lease self_ttl. Waiters asking for more than limit
-- are dropped (they learn why at their next look), and so are skip and
-- dead entries. Read-only: it returns the grants ({holder, n, ttl}), the
-- entries to drop, whether a live waiter was left waiting, whether self
-- was found in the queue, and the permits still free.
local function fk_sem_plan(q, qi, now_ms, self, self_n, self_ttl, free, limit, skip)
  local grants, drop, seen, found = {}, {}, 0, false
  while true do
    local ids = redis.call('ZRANGE', q, seen, seen + 15)
    if #ids == 0 then return grants, drop, false, found, free end
    local infos = redis.call('HMGET', qi, unpack(ids))
    for i, h in ipairs(ids) do
      local alive, ttl, n
      if h == self then
        found, alive, ttl, n = true, now_ms, self_ttl, self_n
      elseif h ~= skip and infos[i] then
        alive, ttl, n = string.match(infos[i], '^(%d+)|(%d+)|(%d+)$')
        alive, ttl, n = fk_num(alive), fk_num(ttl), fk_num(n)
      end
      if not (alive and alive >= now_ms and ttl and ttl > 0 and n and n > 0 and n <= limit) then
        drop[#drop + 1] = h
      elseif n <= free then
        grants[#grants + 1] = {h, n, ttl}
        free = free - n
      else
        return grants, drop, true, found, free
      end
    end
    seen = seen + #ids
    if #ids < 16 then return grants, drop, false, found, free end
  end
end

-- fk_sem_keep makes key live at least ms from now (a no-op for a key that
-- does not exist).
local function fk_sem_keep(key, ms)
  local pttl = redis.call('PTTL', key)
  if pttl ~= -2 and pttl < ms then redis.call('PEXPIRE', key, ms) end
end

-- fk_sem_grant writes the grants planned by fk_sem_plan, each with a new
-- token above fence_val, and returns the tokens and the new fence. It
-- must only run after every precondition holds.
local function fk_sem_grant(grants, fence_val, now_us, now_ms)
  local toks, fence, longest = {}, fence_val, 0
  for i, g in ipairs(grants) do
    local tok = now_us
    if fence + 1 > tok then tok = fence + 1 end
    fence = tok
    toks[i] = fk_fmt(tok)
    redis.call('ZADD', KEYS[1], now_ms + g[3], g[1])
    redis.call('HSET', KEYS[2], g[1], toks[i] .. '|' .. fk_fmt(g[2]) .. '|' .. fk_fmt(now_ms))
    if g[3] > longest then longest = g[3] end
  end
  if #grants > 0 then
    local holders = {}
    for i, g in ipairs(grants) do holders[i] = g[1] end
    fk_dequeue(KEYS[3], KEYS[4], holders)
    fk_sem_keep(KEYS[1], longest)
    fk_sem_keep(KEYS[2], longest)
  end
  return toks, fence
end

-- fk_sem_enqueue adds holder to the wait queue (keeping its place when it
-- is there already) and marks it alive for lease ms.
local function fk_sem_enqueue(holder, n, ttl, lease, now_us, now_ms)
  redis.call('ZADD', KEYS[3], 'NX', now_us, holder)
  redis.call('HSET', KEYS[4], holder, fk_fmt(now_ms + lease) .. '|' .. fk_fmt(ttl) .. '|' .. fk_fmt(n))
  fk_sem_keep(KEYS[3], lease * 2)
  fk_sem_keep(KEYS[4], lease * 2)
end

-- fk_sem_settle writes the sweeps and grants of a semaphore script after
-- its reads: expired holders and dropped waiters go, the planned grants
-- are written with new tokens (the fence keeps the highest, fence_ttl ms),
-- and the stored limit lives as long as the fence. It returns the tokens.
local function fk_sem_settle(sweep, drop, grants, fence_val, fence_ttl, now_us, now_ms)
  fk_dequeue(KEYS[1], KEYS[2], sweep)
  fk_dequeue(KEYS[3], KEYS[4], drop)
  local toks, fence = fk_sem_grant(grants, fence_val, now_us, now_ms)
  if #grants > 0 then
    fk_set_fenced(KEYS[5], fk_fmt(fence), fence_ttl)
    if fence_ttl > 0 then fk_sem_keep(KEYS[6], fence_ttl) end
  end
  return toks
end

-- fk_sem_announce tells waiters of grants other than to self, after every
-- write (a notice is not a grant), and returns them flattened as
-- holder, token, ttl for the reply.
local function fk_sem_announce(grants, toks, self, wake, mode, local_prefix)
  local out = {}
  for i, g in ipairs(grants) do
    if g[1] ~= self then
      fk_announce(wake, mode, local_prefix, g[1], toks[i], g[3])
      out[#out + 1] = g[1]
      out[#out + 1] = toks[i]
      out[#out + 1] = g[3]
    end
  end
  return out
end
