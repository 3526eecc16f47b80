// The Lua script behind every RedisBroker operation. Written for dramatis from the description of
// Python Dramatiq's Redis protocol (keys, value layouts and the effect of each command); see
// docs/redis.md. It touches the same keys in the same way, so Python and TypeScript workers can
// share queues. Like Dramatiq's, it declares one key (the namespace) and derives the others,
// which is why Redis Cluster is not supported.
//
// Call: KEYS = { namespace }, ARGV = { command, now (ms), queue, broker id, arguments... }.
//
// Keys (ns = namespace, q = queue, w = broker id):
//   ns:q            list   ids waiting to be fetched (push at the tail, pop at the head)
//   ns:q.msgs       hash   id -> payload, while enqueued, fetched or in flight
//   ns:q.DQ(.msgs)  same, for delayed messages (their eta is in the payload)
//   ns:q.XQ         zset   dead-lettered ids, score = when (ms)
//   ns:q.XQ.msgs    hash   id -> payload of dead letters
//   ns:__acks__.w.q set    ids broker w fetched from q and has not settled
//   ns:__heartbeats__ zset broker id -> time of its last heartbeat (ms)

/** The dispatch script's Lua source. */
export const DISPATCH_LUA = `
local ns = KEYS[1]
local command = ARGV[1]
local now = tonumber(ARGV[2])
local queue = ARGV[3]
local me = ARGV[4]
local heartbeats = ns .. ':__heartbeats__'
local CHUNK = 1000

local function list_key(q) return ns .. ':' .. q end
local function hash_key(q) return ns .. ':' .. q .. '.msgs' end
local function acks_key(w, q) return ns .. ':__acks__.' .. w .. '.' .. q end
local function canonical(q)
  if string.sub(q, -3) == '.DQ' then return string.sub(q, 1, -4) end
  return q
end
local function dead_keys(q)
  local c = canonical(q)
  return ns .. ':' .. c .. '.XQ', ns .. ':' .. c .. '.XQ.msgs'
end
local function heartbeat() redis.call('ZADD', heartbeats, now, me) end
-- Runs redis.call(cmd, key, items[i..j]) over slices, because unpack() has a stack limit.
local function each_slice(cmd, key, items)
  for i = 1, #items, CHUNK do
    redis.call(cmd, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end
-- Stores a new payload under id in hash, unless id is taken there (dramatis names a copy by its
-- message id: the same message sent twice onto one queue): then under id.1, id.2, ..., with the
-- payload's redis_message_id rewritten to match. Returns the id used.
local function put_new(hash, id, payload)
  if redis.call('HSETNX', hash, id, payload) == 1 then return id end
  local field = '"redis_message_id":"' .. id .. '"'
  local i, j = string.find(payload, field, 1, true)
  local n = 1
  while redis.call('HEXISTS', hash, id .. '.' .. n) == 1 do n = n + 1 end
  local new = id .. '.' .. n
  if i then
    payload = string.sub(payload, 1, i - 1) .. '"redis_message_id":"' .. new .. '"' ..
      string.sub(payload, j + 1)
  end
  redis.call('HSET', hash, new, payload)
  return new
end
local function glob_escape(s) return (string.gsub(s, '[%*%?%[%]\\\\]', '\\\\%0')) end

if command == 'enqueue' then
  -- ARGV[5..]: id, payload, id, payload, ...
  local hash = hash_key(queue)
  local ids = {}
  for i = 5, #ARGV, 2 do ids[#ids + 1] = put_new(hash, ARGV[i], ARGV[i + 1]) end
  each_slice('RPUSH', list_key(queue), ids)
  return #ids

elseif command == 'fetch' then
  -- ARGV[5]: how many. Replies { id, payload, id, payload, ... }; ids without a payload are
  -- dropped from the ack set at once.
  heartbeat()
  local ids = redis.call('LPOP', list_key(queue), tonumber(ARGV[5]))
  if not ids then return {} end
  local acks = acks_key(me, queue)
  redis.call('SADD', acks, unpack(ids))
  local payloads = redis.call('HMGET', hash_key(queue), unpack(ids))
  local out = {}
  for i = 1, #ids do
    if payloads[i] then
      out[#out + 1] = ids[i]
      out[#out + 1] = payloads[i]
    else
      redis.call('SREM', acks, ids[i])
    end
  end
  return out

elseif command == 'ack' then
  -- ARGV[5]: owner (the broker that fetched), ARGV[6..]: ids
  local owner = ARGV[5]
  if owner == me then heartbeat() end
  local acks, hash = acks_key(owner, queue), hash_key(queue)
  local n = 0
  for i = 6, #ARGV do
    if redis.call('SREM', acks, ARGV[i]) == 1 then
      n = n + redis.call('HDEL', hash, ARGV[i])
    end
  end
  return n

elseif command == 'nack' then
  -- ARGV[5]: owner, ARGV[6]: id, ARGV[7]: the message as it failed ('' = as stored)
  local owner, id, payload = ARGV[5], ARGV[6], ARGV[7]
  if owner == me then heartbeat() end
  local hash = hash_key(queue)
  if redis.call('SREM', acks_key(owner, queue), id) == 0 then return 0 end
  local stored = redis.call('HGET', hash, id)
  if not stored then return 0 end
  if payload == nil or payload == '' then payload = stored end
  local xq, xmsgs = dead_keys(queue)
  redis.call('ZADD', xq, now, id)
  redis.call('HSET', xmsgs, id, payload)
  redis.call('HDEL', hash, id)
  return 1

elseif command == 'requeue' then
  -- ARGV[5]: owner, ARGV[6..]: ids, put back at the head of the queue in this order.
  local owner = ARGV[5]
  if owner == me then heartbeat() end
  local acks, hash = acks_key(owner, queue), hash_key(queue)
  local back = {}
  for i = #ARGV, 6, -1 do
    if redis.call('SREM', acks, ARGV[i]) == 1 and redis.call('HEXISTS', hash, ARGV[i]) == 1 then
      back[#back + 1] = ARGV[i]
    end
  end
  each_slice('LPUSH', list_key(queue), back)
  return #back

elseif command == 'move' then
  -- queue = q.DQ. ARGV[5]: id of the delayed entry, ARGV[6]: new id, ARGV[7]: payload for q.
  -- Enqueues the copy on q only if the delayed entry still exists, and deletes it in the same
  -- step: a delayed message reaches its queue once, whoever holds it. The holder's ack set
  -- entry is removed by its ack (or dropped by recovery, as it has no payload left).
  if redis.call('HDEL', hash_key(queue), ARGV[5]) == 0 then return 0 end
  local c = canonical(queue)
  redis.call('RPUSH', list_key(c), put_new(hash_key(c), ARGV[6], ARGV[7]))
  return 1

elseif command == 'reclaim' then
  -- ARGV[5..]: the ids this broker knows it holds on queue. Any other id in its ack set was
  -- fetched by a call whose reply was lost: put it back at the head.
  heartbeat()
  local known = {}
  for i = 5, #ARGV do known[ARGV[i]] = true end
  local acks, hash = acks_key(me, queue), hash_key(queue)
  local back = {}
  for _, id in ipairs(redis.call('SMEMBERS', acks)) do
    if not known[id] then
      redis.call('SREM', acks, id)
      if redis.call('HEXISTS', hash, id) == 1 then back[#back + 1] = id end
    end
  end
  each_slice('LPUSH', list_key(queue), back)
  return #back

elseif command == 'heartbeat' then
  heartbeat()
  return 0

elseif command == 'maintain' then
  -- ARGV[5]: heartbeat timeout, ARGV[6]: dead message ttl, ARGV[7..]: queues whose dead
  -- letters to prune. Every broker whose heartbeat is older than the timeout is dead: all its
  -- ack sets (every queue) go back to their queues' tails, then it leaves the heartbeat set.
  heartbeat()
  local timeout, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
  local recovered, pruned = 0, 0
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', heartbeats, '-inf', now - timeout)) do
    if d ~= me then
      local prefix = ns .. ':__acks__.' .. d .. '.'
      for _, set in ipairs(redis.call('KEYS', glob_escape(prefix) .. '*')) do
        local q = string.sub(set, #prefix + 1)
        local hash = hash_key(q)
        local back = {}
        for _, id in ipairs(redis.call('SMEMBERS', set)) do
          if redis.call('HEXISTS', hash, id) == 1 then back[#back + 1] = id end
        end
        each_slice('RPUSH', list_key(q), back)
        redis.call('DEL', set)
        recovered = recovered + #back
      end
      redis.call('ZREM', heartbeats, d)
    end
  end
  for i = 7, #ARGV do
    local xq, xmsgs = dead_keys(ARGV[i])
    while true do
      local old = redis.call('ZRANGEBYSCORE', xq, '-inf', now - ttl, 'LIMIT', 0, CHUNK)
      if #old == 0 then break end
      redis.call('ZREM', xq, unpack(old))
      redis.call('HDEL', xmsgs, unpack(old))
      pruned = pruned + #old
      if #old < CHUNK then break end
    end
  end
  return { recovered, pruned }

elseif command == 'leave' then
  -- ARGV[5..]: the queues this broker fetched from. Leaves the heartbeat set if it holds
  -- nothing any more.
  for i = 5, #ARGV do
    if redis.call('EXISTS', acks_key(me, ARGV[i])) == 1 then return 0 end
  end
  redis.call('ZREM', heartbeats, me)
  return 1

elseif command == 'flush' then
  -- queue = canonical. Drops the ready messages of q and every message of q.DQ.
  local list, hash = list_key(queue), hash_key(queue)
  local ids = redis.call('LRANGE', list, 0, -1)
  each_slice('HDEL', hash, ids)
  redis.call('DEL', list, list_key(queue .. '.DQ'), hash_key(queue .. '.DQ'))
  return #ids

elseif command == 'stats' then
  -- queue = canonical.
  local xq = dead_keys(queue)
  return {
    redis.call('LLEN', list_key(queue)), redis.call('HLEN', hash_key(queue)),
    redis.call('LLEN', list_key(queue .. '.DQ')), redis.call('HLEN', hash_key(queue .. '.DQ')),
    redis.call('ZCARD', xq),
  }

elseif command == 'dead' then
  -- queue = canonical. ARGV[5]: how many (-1 = all), ARGV[6]: only those dead at or after
  -- this time (ms). Replies { id, payload, score, ... }, oldest first.
  local xq, xmsgs = dead_keys(queue)
  local ids = redis.call('ZRANGEBYSCORE', xq, ARGV[6], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
  -- A letter whose payload is missing is replied too (with ''), as stats counts it.
  local out = {}
  for i = 1, #ids, 2 do
    out[#out + 1] = ids[i]
    out[#out + 1] = redis.call('HGET', xmsgs, ids[i]) or ''
    out[#out + 1] = ids[i + 1]
  end
  return out

elseif command == 'revive' then
  -- queue = canonical. ARGV[5..]: dead id, new id, payload, ... Moves dead letters back to
  -- the tail of the queue.
  local xq, xmsgs = dead_keys(queue)
  local n = 0
  for i = 5, #ARGV, 3 do
    if redis.call('ZREM', xq, ARGV[i]) == 1 then
      redis.call('HDEL', xmsgs, ARGV[i])
      redis.call('HSET', hash_key(queue), ARGV[i + 1], ARGV[i + 2])
      redis.call('RPUSH', list_key(queue), ARGV[i + 1])
      n = n + 1
    end
  end
  return n

elseif command == 'purge_dead' then
  local xq, xmsgs = dead_keys(queue)
  local n = redis.call('ZCARD', xq)
  redis.call('DEL', xq, xmsgs)
  return n
end
return redis.error_reply('dramatis: unknown command ' .. tostring(command))
`;
