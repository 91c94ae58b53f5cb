"""The Lua scripts of the Redis store: every read-modify-write runs as one script.

Registered once per client by ``receiver.store.redis.core.RedisCore.connect`` (every name in
``SCRIPTS``) and run by the store's parts (``receiver.store.redis.queue``, ``guards``,
``approvals``, ``timers``, ``resolved``: ``CANCEL_PENDING`` and ``TAKE_RESOLVED`` in one MULTI
with ``CLAIM``); the queue part's scripts are in ``receiver.store.redis.lua_queue``.
Each script touches the keys of one part only, all of one hash slot
(``receiver.store.redis.core.RedisCore.key``), so it runs on a Redis Cluster; a key it
reaches by name (an ``ARGV`` prefix plus an id) is of that same part and slot.

Conventions: times are the injected clock's seconds, formatted by Python
(``receiver.store.redis.core.num``) and compared here with ``tonumber``, so what is stored
is exactly what Python computed (Lua's ``tostring`` would round it); Redis TTLs
(``PEXPIRE``) only collect garbage and are always passed in milliseconds
(``receiver.store.redis.core.gc_ms``).
"""

from __future__ import annotations

from receiver.store.redis.lua_deferred import DEFERRED_SCRIPTS
from receiver.store.redis.lua_queue import EXTEND, QUEUE_SCRIPTS

ADMIT = """
-- KEYS: cooldown hash (until, member), rate zset, blast zset (members scored by spend time).
-- ARGV: now, spend, member, then the cooldown (applies, spend it, until, gc_ms),
-- the rate window (applies, max, cutoff, gc_ms) and the blast window (applies, max, cutoff, gc_ms).
-- Idempotent per member: what it spent already neither blocks it nor is spent again.
-- Returns {verdict, until or oldest score or ''}.
local now, member = tonumber(ARGV[1]), ARGV[3]
if ARGV[4] == '1' then
  local held = redis.call('HMGET', KEYS[1], 'until', 'member')
  if held[1] and tonumber(held[1]) > now and held[2] ~= member then return {'cooldown', held[1]} end
end
local windows = {{KEYS[2], 8, 'rate_limit'}, {KEYS[3], 12, 'blast_radius'}}
local unspent = {}
for _, w in ipairs(windows) do
  local key, at = w[1], w[2]
  if ARGV[at] == '1' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[at + 2])
    if not redis.call('ZSCORE', key, member) then
      if redis.call('ZCARD', key) >= tonumber(ARGV[at + 1]) then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        return {w[3], oldest[2] or ''}
      end
      unspent[#unspent + 1] = w
    end
  end
end
if ARGV[2] == '1' then
  if ARGV[5] == '1' and redis.call('HGET', KEYS[1], 'member') ~= member then
    redis.call('HSET', KEYS[1], 'until', ARGV[6], 'member', member)
    redis.call('PEXPIRE', KEYS[1], ARGV[7])
  end
  for _, w in ipairs(unspent) do
    redis.call('ZADD', w[1], ARGV[1], member)
    redis.call('PEXPIRE', w[1], ARGV[w[2] + 3])
  end
end
return {'ok', ''}
"""

RECORD_FAILURE = """
-- KEYS[1]: circuit hash. ARGV: threshold, open_until, gc_ms. Returns the failure count.
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', ARGV[2])
else
  redis.call('HDEL', KEYS[1], 'open_until')
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return failures
"""

RESET_CIRCUIT = """
-- KEYS[1]: circuit hash. Returns {failures, open_until} as they were, and deletes it.
local held = redis.call('HMGET', KEYS[1], 'failures', 'open_until')
redis.call('DEL', KEYS[1])
return held
"""

ACQUIRE_LOCK = """
-- KEYS[1]: lock hash, KEYS[2]: fencing counter (never expires, never resets).
-- ARGV: now, owner, expires_at, gc_ms, breaking (an owner whose hold is taken over; '' none).
-- Returns the token, or nil when held by another.
local held = redis.call('HMGET', KEYS[1], 'owner', 'expires_at')
if held[1] and tonumber(held[2]) > tonumber(ARGV[1]) and (ARGV[5] == '' or held[1] ~= ARGV[5]) then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'token', token, 'expires_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return token
"""

RELEASE_LOCK = """
-- KEYS[1]: lock hash. ARGV: token. Only the holder of the token releases.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

PUT_APPROVAL = EXTEND + """
-- KEYS: approval hash, index zset (id by created_at), pending set of its fingerprint.
-- ARGV: id, status, created_at, expires_at, fingerprint, body, gc_ms, approval key prefix.
-- Returns 0 when the id exists already.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'expires_at', ARGV[4], 'fingerprint', ARGV[5],
           'body', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
extend(KEYS[2], ARGV[7])
if ARGV[2] == 'pending' then
  redis.call('SADD', KEYS[3], ARGV[1])
  extend(KEYS[3], ARGV[7])
end
-- the oldest index entries whose record is gone (its TTL passed) leave the index
for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, 9)) do
  if redis.call('EXISTS', ARGV[8] .. old) == 0 then redis.call('ZREM', KEYS[2], old) end
end
return 1
"""

# Move the pending approval ``key`` (id ``id``) to ``to``, or to expired when it is past its
# expiry (unless ``to`` is expired); keep it ``keep`` ms, drop it from its alert's pending set.
# Returns {0} when missing, else {1, changed, status, body, decision}.
DECIDE = """
local function decide(key, index, now, to, moved, expired, keep, pending, id)
  local rec = redis.call('HMGET', key, 'status', 'expires_at', 'fingerprint', 'body', 'decision')
  if not rec[1] then return {0} end
  if rec[1] ~= 'pending' then return {1, 0, rec[1], rec[4], rec[5] or ''} end
  local instead = tonumber(now) >= tonumber(rec[2]) and to ~= 'expired'
  local status, decision, changed = to, moved, 1
  if instead then status, decision, changed = 'expired', expired, 0 end
  redis.call('HSET', key, 'status', status, 'decision', decision)
  redis.call('PEXPIRE', key, keep)
  redis.call('SREM', pending .. rec[3], id)
  extend(index, keep)
  return {1, changed, status, rec[4], decision}
end
"""

DECIDE_APPROVAL = EXTEND + DECIDE + """
-- KEYS: approval hash, index zset. ARGV: now, to, decision if moved to `to`,
-- decision if expired instead, keep_ms, pending set key prefix, id.
return decide(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
"""

CANCEL_PENDING = EXTEND + DECIDE + """
-- KEYS: index zset. ARGV: now, decision if cancelled, decision if expired instead, keep_ms,
-- pending set key prefix, approval key prefix, fingerprints... Cancels each pending approval of
-- each fingerprint (as DECIDE_APPROVAL); ids whose record is gone leave the pending set.
-- Returns, per fingerprint, {status, body, decision, ...} of each approval moved.
local out = {}
for i = 7, #ARGV do
  local set, moved = ARGV[5] .. ARGV[i], {}
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local status = redis.call('HGET', ARGV[6] .. id, 'status')
    if not status then
      redis.call('SREM', set, id)
    elseif status == 'pending' then
      local r = decide(ARGV[6] .. id, KEYS[1], ARGV[1], 'cancelled', ARGV[2], ARGV[3], ARGV[4], ARGV[5], id)
      moved[#moved + 1] = r[3]
      moved[#moved + 1] = r[4]
      moved[#moved + 1] = r[5]
    end
  end
  out[#out + 1] = moved
end
return out
"""

# -- timers and occurrence counts (keys: see ``receiver.store.redis.timers``)
PUT_TIMERS = EXTEND + """
-- KEYS: index, then per timer: timer, fp set. ARGV: now, then per timer: id, kind, due_at,
-- body, gc_ms, expires_at. Returns per timer 1 (armed) or 0 (its id armed, held or a tombstone).
local now = tonumber(ARGV[1])
local out = {}
for i = 0, (#KEYS - 1) / 2 - 1 do
  local timer, fp, a = KEYS[2 + 2 * i], KEYS[3 + 2 * i], 1 + 6 * i
  local expires = redis.call('HGET', timer, 'expires_at')
  if expires and tonumber(expires) > now then
    out[i + 1] = 0
  else
    redis.call('HDEL', timer, 'held_until')
    redis.call('HSET', timer, 'kind', ARGV[a + 2], 'body', ARGV[a + 4], 'claims', 0, 'done', 0,
               'expires_at', ARGV[a + 6])
    redis.call('PEXPIRE', timer, ARGV[a + 5])
    redis.call('ZADD', KEYS[1], ARGV[a + 3], ARGV[a + 1])
    redis.call('SADD', fp, ARGV[a + 1])
    extend(fp, ARGV[a + 5])
    out[i + 1] = 1
  end
end
return out
"""

CLAIM_TIMERS = """
-- KEYS: index. ARGV: now, held_until, limit, timer key prefix. Returns {body, claims, ...}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  local body, done = unpack(redis.call('HMGET', key, 'body', 'done'))
  if body and done == '0' then
    redis.call('HSET', key, 'held_until', ARGV[2])
    local claims = redis.call('HINCRBY', key, 'claims', 1)
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = body
    out[#out + 1] = claims
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

FINISH_TIMER = """
-- KEYS: timer, index. ARGV: id, fp set prefix.
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'done', 1)
  redis.call('HDEL', KEYS[1], 'held_until')
  local body = cjson.decode(redis.call('HGET', KEYS[1], 'body'))
  redis.call('SREM', ARGV[2] .. body['fingerprint'], ARGV[1])
end
return 1
"""

# Take (mark done, unindex) the armed timers in the fingerprint set ``set`` whose kind is in
# ``kinds`` (a set) and that nobody holds; ids finished or gone leave the set.
# Returns {body, claims, ...} of each timer taken.
TAKE = """
local function take(index, set, now, prefix, kinds)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local key = prefix .. id
    local kind, held, body, done, claims = unpack(redis.call('HMGET', key, 'kind', 'held_until', 'body',
                                                             'done', 'claims'))
    if not body or done ~= '0' then
      redis.call('SREM', set, id)
    elseif kinds[kind] and (not held or tonumber(held) <= tonumber(now)) then
      redis.call('HSET', key, 'done', 1)
      redis.call('ZREM', index, id)
      redis.call('SREM', set, id)
      out[#out + 1] = body
      out[#out + 1] = claims
    end
  end
  return out
end
"""

TAKE_TIMERS = TAKE + """
-- KEYS: index, fp set. ARGV: now, timer key prefix, kinds...
local kinds = {}
for i = 3, #ARGV do kinds[ARGV[i]] = true end
return take(KEYS[1], KEYS[2], ARGV[1], ARGV[2], kinds)
"""

TAKE_RESOLVED = TAKE + """
-- KEYS: index. ARGV: now, timer key prefix, fp set key prefix, n, n kinds, fingerprints...
-- Returns, per fingerprint, what TAKE_TIMERS returns for it.
local n, kinds, out = tonumber(ARGV[4]), {}, {}
for i = 5, 4 + n do kinds[ARGV[i]] = true end
for i = 5 + n, #ARGV do out[#out + 1] = take(KEYS[1], ARGV[3] .. ARGV[i], ARGV[1], ARGV[2], kinds) end
return out
"""

COUNT_OCCURRENCE = """
-- KEYS: the set. ARGV: now, member, forget_before, gc_ms.
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
"""

SCRIPTS = {
    **QUEUE_SCRIPTS, **DEFERRED_SCRIPTS, "ADMIT": ADMIT,
    "RECORD_FAILURE": RECORD_FAILURE, "RESET_CIRCUIT": RESET_CIRCUIT,
    "ACQUIRE_LOCK": ACQUIRE_LOCK, "RELEASE_LOCK": RELEASE_LOCK,
    "PUT_APPROVAL": PUT_APPROVAL, "DECIDE_APPROVAL": DECIDE_APPROVAL, "PUT_TIMERS": PUT_TIMERS,
    "CLAIM_TIMERS": CLAIM_TIMERS, "FINISH_TIMER": FINISH_TIMER, "TAKE_TIMERS": TAKE_TIMERS,
    "COUNT_OCCURRENCE": COUNT_OCCURRENCE, "CANCEL_PENDING": CANCEL_PENDING, "TAKE_RESOLVED": TAKE_RESOLVED,
}
"""Every script by the name the store's parts run it under."""
