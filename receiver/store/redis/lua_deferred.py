"""The Lua scripts of the Redis store's deferred work, on the queue part's slot.

Run by ``receiver.store.redis.deferred``; registered with the others under their names in
``receiver.store.redis.lua.SCRIPTS`` (whose conventions they follow). Both touch the work
stream and the deferred keys at once, so an item is always in exactly one of them.
"""

from __future__ import annotations

FORGET = """
local function forget(items, wake, id)
  local body = redis.call('HGET', items, id)
  if body then
    local w = cjson.decode(body).w
    if type(w) == 'string' then redis.call('ZREM', wake, w) end
  end
  return body
end
"""

DEFER = FORGET + """
-- KEYS[1]: stream, KEYS[2]: touched hash, KEYS[3]: deferred zset (id -> not_before),
-- KEYS[4]: deferred items (id -> {k: dedup key or false, p: payload JSON, w: its wake member or
-- false}), KEYS[5]: wake index (members `WAKE \0 RANK \0 id`, all scored 0: ordered by name).
-- ARGV: group, ref, id, item, not_before, wake member ('' for none).
-- Returns 0 (nothing kept) when ref is no longer queued.
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
forget(KEYS[4], KEYS[5], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[5], 0, ARGV[6]) end
return 1
"""

WAKE_DEFERRED = """
-- KEYS[1]: deferred zset, KEYS[2]: deferred items, KEYS[3]: wake index.
-- ARGV: now, from (`WAKE \0`), to (`WAKE \1`), count. The first `count` members under WAKE become
-- due now and leave the index. Returns how many.
local woken = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[2], '(' .. ARGV[3],
                         'LIMIT', 0, tonumber(ARGV[4]))
for _, member in ipairs(woken) do
  local id = string.match(member, '^.*%z(.*)$')
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) > tonumber(ARGV[1]) then redis.call('ZADD', KEYS[1], ARGV[1], id) end
  redis.call('ZREM', KEYS[3], member)
end
return #woken
"""

RELEASE_DEFERRED = FORGET + """
-- KEYS[1]: stream, KEYS[2]: deferred zset, KEYS[3]: deferred items, KEYS[4]: wake index. ARGV: now, limit.
-- The due items are queued again (`at`: now) and forgotten as deferred. Returns {how many, how many wait}.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  local body = forget(KEYS[3], KEYS[4], id)
  if body then
    local item = cjson.decode(body)
    if type(item.k) == 'string' then
      redis.call('XADD', KEYS[1], '*', 'id', id, 'dedup_key', item.k, 'payload', item.p, 'at', ARGV[1])
    else
      redis.call('XADD', KEYS[1], '*', 'id', id, 'payload', item.p, 'at', ARGV[1])
    end
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
end
return {#due, redis.call('ZCARD', KEYS[2])}
"""

DEFERRED_SCRIPTS = {"DEFER": DEFER, "WAKE_DEFERRED": WAKE_DEFERRED, "RELEASE_DEFERRED": RELEASE_DEFERRED}
