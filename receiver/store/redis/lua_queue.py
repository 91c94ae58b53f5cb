"""The Lua scripts of the Redis store's queue part: dedup claims, the work stream, the steps' markers.

Run by ``receiver.store.redis.queue`` (``MARK_STEP`` by ``receiver.store.redis.marks``);
registered with the others under their names in ``receiver.store.redis.lua.SCRIPTS``
(whose conventions they follow). ``EXTEND`` is the helper every part's scripts that keep a
key alive share.
"""

from __future__ import annotations

# Lengthen an existing key's TTL to at least ``ms`` milliseconds; never shortens one.
EXTEND = """
local function extend(key, ms)
  local left = redis.call('PTTL', key)
  if left ~= -2 and left < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
end
"""

CLAIM = """
-- KEYS: dedup keys. ARGV: now, expires_at, gc_ms. A key is free when absent or expired.
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held and tonumber(held) > now then
    out[i] = 0
  else
    redis.call('SET', key, ARGV[2], 'PX', ARGV[3])
    out[i] = 1
  end
end
return out
"""

UNCLAIM = """
-- KEYS: dedup keys. ARGV: the value one claim wrote. Deletes each key still holding it (that claim's own).
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""

RELEASE = """
-- KEYS: dedup keys, deleted (a script, so that a release can be retried through a failover like UNCLAIM).
redis.call('DEL', unpack(KEYS))
return 0
"""

ENQUEUE = """
-- KEYS[1]: stream; KEYS[2..]: dedup keys to extend.
-- ARGV: max_backlog, expires_at, gc_ms, n, per item: id, has_dedup, dedup_key, payload; last, now (each
-- entry's `at`, when it was enqueued). Returns the entry ids added, or -1 when the backlog has no room.
local n = tonumber(ARGV[4])
local now = ARGV[#ARGV]
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then return -1 end
local added = {}
for i = 0, n - 1 do
  local at = 5 + i * 4
  if ARGV[at + 1] == '1' then
    added[#added + 1] = redis.call('XADD', KEYS[1], '*', 'id', ARGV[at], 'dedup_key', ARGV[at + 2],
                                   'payload', ARGV[at + 3], 'at', now)
  else
    added[#added + 1] = redis.call('XADD', KEYS[1], '*', 'id', ARGV[at], 'payload', ARGV[at + 3],
                                   'at', now)
  end
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2], 'XX', 'PX', ARGV[3])
end
return added
"""

CLAIM_ENQUEUE = """
-- KEYS[1]: stream; KEYS[2..]: dedup keys. ARGV: now, expires_at, gc_ms, max_backlog, n, then per item:
-- id, index of its dedup key in KEYS (0: none), dedup_key, payload.
-- A key is free when absent or expired (and not taken earlier in this call); the items whose key was
-- free (or that have none) are queued (`at`: now, when it was enqueued) and their keys claimed, all
-- at once. Returns per item its entry
-- id ('' for a duplicate), or -1 (nothing written) when the backlog has no room for them.
local now, n = tonumber(ARGV[1]), tonumber(ARGV[5])
local fresh, count, seen = {}, 0, {}
for i = 0, n - 1 do
  local k = tonumber(ARGV[7 + i * 4])
  local ok = true
  if k > 0 then
    local held = redis.call('GET', KEYS[k])
    ok = not seen[k] and not (held and tonumber(held) > now)
    seen[k] = true
  end
  fresh[i + 1] = ok
  if ok then count = count + 1 end
end
if count > 0 and redis.call('XLEN', KEYS[1]) + count > tonumber(ARGV[4]) then return -1 end
local out = {}
for i = 0, n - 1 do
  local at, k = 6 + i * 4, tonumber(ARGV[7 + i * 4])
  if not fresh[i + 1] then
    out[i + 1] = ''
  elseif k > 0 then
    redis.call('SET', KEYS[k], ARGV[2], 'PX', ARGV[3])
    out[i + 1] = redis.call('XADD', KEYS[1], '*', 'id', ARGV[at], 'dedup_key', ARGV[at + 2],
                            'payload', ARGV[at + 3], 'at', ARGV[1])
  else
    out[i + 1] = redis.call('XADD', KEYS[1], '*', 'id', ARGV[at], 'payload', ARGV[at + 3], 'at', ARGV[1])
  end
end
return out
"""

UNQUEUE = """
-- KEYS[1]: stream; KEYS[2..]: dedup keys. ARGV: the value the claims were written with, then entry ids.
-- Undoes one CLAIM_ENQUEUE no replica confirmed: its entries deleted, its claims (still holding
-- that value) too. Idempotent, so it is retried through a failover.
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
if #ARGV > 1 then redis.call('XDEL', KEYS[1], unpack(ARGV, 2)) end
return 0
"""

TAKE = EXTEND + """
-- KEYS[1]: stream, KEYS[2]: touched hash. ARGV: group, consumer, count, now, gc_ms.
-- Returns {1, entries} or, when nothing is new, {0, id to wait after}.
local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if got and #got[1][2] > 0 then
  for _, entry in ipairs(got[1][2]) do redis.call('HSET', KEYS[2], entry[1], ARGV[4]) end
  extend(KEYS[2], ARGV[5])
  return {1, got[1][2]}
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then return {0, last[1][1]} end
return {0, '0-0'}
"""

COMPLETE = """
-- KEYS[1]: stream, KEYS[2]: touched hash. ARGV: group, refs... Acknowledged, deleted and forgotten at once.
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
return 0
"""

RECLAIM = EXTEND + """
-- KEYS[1]: stream, KEYS[2]: touched hash, KEYS[3]: heartbeats (consumer -> alive until).
-- ARGV: group, consumer, now, cutoff, count, gc_ms.
-- Ownership is the PEL's; idle time is the touched hash's (clock seconds). An entry with no
-- touched time (its taker died between reading and recording) is timed from first sight.
-- An entry whose owner's heartbeat expired is taken at once, whatever its idle time (an owner
-- with no heartbeat at all, from a version without them, waits for the cutoff).
local group, consumer, now = ARGV[1], ARGV[2], ARGV[3]
local cutoff, want = tonumber(ARGV[4]), tonumber(ARGV[5])
local out, dead = {}, {}
local start = '-'
while #out < want do
  local batch = redis.call('XPENDING', KEYS[1], group, start, '+', 100)
  if #batch == 0 then break end
  for _, pending in ipairs(batch) do
    local id, owner, deliveries = pending[1], pending[2], pending[4]
    if #out < want and owner ~= consumer then
      if dead[owner] == nil then
        local alive = redis.call('HGET', KEYS[3], owner)
        dead[owner] = (alive and tonumber(alive) <= tonumber(now)) and true or false
      end
      local touched = redis.call('HGET', KEYS[2], id)
      if dead[owner] or (touched and tonumber(touched) <= cutoff) then
        local claimed = redis.call('XCLAIM', KEYS[1], group, consumer, 0, id)
        if claimed[1] then
          redis.call('HSET', KEYS[2], id, now)
          out[#out + 1] = {id, deliveries + 1, claimed[1][2]}
        else  -- deleted from the stream: nothing left to do
          redis.call('XACK', KEYS[1], group, id)
          redis.call('HDEL', KEYS[2], id)
        end
      elseif not touched then
        redis.call('HSET', KEYS[2], id, now)
      end
    end
  end
  start = '(' .. batch[#batch][1]
end
extend(KEYS[2], ARGV[6])
return out
"""

RECLAIM_OWN = EXTEND + """
-- KEYS[1]: stream, KEYS[2]: touched hash. ARGV: group, consumer, now, cutoff, count, gc_ms, held refs...
-- The consumer's own pending entries that it does not hold (not in ARGV[7..]) and untouched since
-- the cutoff are delivered to it again (touched now); an entry with no touched time is timed from now.
local group, consumer, now = ARGV[1], ARGV[2], ARGV[3]
local cutoff, want = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = {}
for i = 7, #ARGV do held[ARGV[i]] = true end
local out = {}
local start = '-'
while #out < want do
  local batch = redis.call('XPENDING', KEYS[1], group, start, '+', 100, consumer)
  if #batch == 0 then break end
  for _, pending in ipairs(batch) do
    local id, deliveries = pending[1], pending[4]
    if #out < want and not held[id] then
      local touched = redis.call('HGET', KEYS[2], id)
      if not touched then
        redis.call('HSET', KEYS[2], id, now)
      elseif tonumber(touched) <= cutoff then
        local claimed = redis.call('XCLAIM', KEYS[1], group, consumer, 0, id)
        if claimed[1] then
          redis.call('HSET', KEYS[2], id, now)
          out[#out + 1] = {id, deliveries + 1, claimed[1][2]}
        else
          redis.call('XACK', KEYS[1], group, id)
          redis.call('HDEL', KEYS[2], id)
        end
      end
    end
  end
  start = '(' .. batch[#batch][1]
end
extend(KEYS[2], ARGV[6])
return out
"""

HEARTBEAT = EXTEND + """
-- KEYS[1]: stream, KEYS[3]: heartbeats (consumer -> clock time it is alive until).
-- ARGV: group, consumer, alive_until, forget_before, gc_ms. A consumer whose heartbeat ended before
-- forget_before and that holds nothing more is forgotten: its heartbeat and its name in the group.
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < tonumber(ARGV[4])
      and #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, all[i]) == 0 then
    redis.call('HDEL', KEYS[3], all[i])
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], all[i])
  end
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 0
"""

TOUCH = EXTEND + """
-- KEYS[1]: stream, KEYS[2]: touched hash. ARGV: group, consumer, now, gc_ms, refs...
-- Only the consumer that owns an entry (in the PEL) can touch it.
for i = 5, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then redis.call('HSET', KEYS[2], ARGV[i], ARGV[3]) end
end
extend(KEYS[2], ARGV[4])
return 0
"""

MARK_STEP = """
-- KEYS[1]: a step's execute-once marker (hash: state, holder, expires_at, body).
-- ARGV: now, if_absent, if_claimed, if_holder ('' none), body ('' to remove it), state, holder,
-- expires_at, gc_ms. A marker past its expires_at counts as absent. Replaces it when allowed;
-- returns {1 or 0, the body there before the call ('' none)}.
local now = tonumber(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'state', 'holder', 'expires_at', 'body')
local ok
if not held[3] or tonumber(held[3]) <= now then
  held[4] = false
  ok = ARGV[2] == '1'
else
  ok = (ARGV[3] == '1' and held[1] == 'claimed') or (ARGV[4] ~= '' and held[2] == ARGV[4])
end
if not ok then return {0, held[4] or ''} end
if ARGV[5] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', ARGV[6], 'holder', ARGV[7], 'expires_at', ARGV[8], 'body', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
end
return {1, held[4] or ''}
"""

QUEUE_SCRIPTS = {
    "MARK_STEP": MARK_STEP,
    "CLAIM": CLAIM,
    "UNCLAIM": UNCLAIM,
    "RELEASE": RELEASE,
    "CLAIM_ENQUEUE": CLAIM_ENQUEUE,
    "UNQUEUE": UNQUEUE,
    "ENQUEUE": ENQUEUE,
    "TAKE": TAKE,
    "COMPLETE": COMPLETE,
    "RECLAIM": RECLAIM,
    "RECLAIM_OWN": RECLAIM_OWN,
    "HEARTBEAT": HEARTBEAT,
    "TOUCH": TOUCH,
}
