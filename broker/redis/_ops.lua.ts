// The Lua script behind the RedisBroker's operations (broker/ops.ts): unique sends, debounce,
// schedule ticks, cancel, lookups by message id and browsing. Dramatiq's keys keep their meaning
// (docs/redis.md); what only dramatis reads lives under `ns:__dramatis__.` (see docs/redis.md,
// "Operations").
//
// Call: KEYS = { namespace }, ARGV = { command, now (ms), arguments... }.
//
// Keys (ns = namespace):
//   ns:__dramatis__.holders        set     the days holder records expire on
//   ns:__dramatis__.holders.<day>  hash    unique key -> its holder: id, queue, rid, until, payload
//   ns:__dramatis__.cancel.<id>    string  a running message's cancel mark (1 hour)
//   ns:__dramatis__.ticks          hash    schedule name -> last tick enqueued (ms)
//   ns:__dramatis__.schedule_pauses hash   schedule name -> "paused:<ms>" or "resumed:<ms>"

/** The operations script's Lua source. */
export const OPS_LUA = `
local ns = KEYS[1]
local command = ARGV[1]
local now = tonumber(ARGV[2])
local DAY7 = 7 * 24 * 3600 * 1000

local function list_key(q) return ns .. ':' .. q end
local function hash_key(q) return ns .. ':' .. q .. '.msgs' end
local function is_dq(q) return string.sub(q, -3) == '.DQ' end
local function canonical(q)
  if is_dq(q) then return string.sub(q, 1, -4) end
  return q
end

-- A holder record: id \\n queue \\n rid \\n until \\n payload (payload only with unique_for).
local function parse_holder(v)
  if not v then return nil end
  local a = string.find(v, '\\n', 1, true)
  local b = string.find(v, '\\n', a + 1, true)
  local c = string.find(v, '\\n', b + 1, true)
  local d = string.find(v, '\\n', c + 1, true)
  return {
    id = string.sub(v, 1, a - 1), queue = string.sub(v, a + 1, b - 1),
    rid = string.sub(v, b + 1, c - 1), untl = tonumber(string.sub(v, c + 1, d - 1)),
    payload = string.sub(v, d + 1),
  }
end
local function encode_holder(h)
  return h.id .. '\\n' .. h.queue .. '\\n' .. h.rid .. '\\n' .. h.untl .. '\\n' .. h.payload
end
-- Holder records live in one hash per day they expire on, HOLDERS .. '.' .. day (that hash expires
-- at the end of the day), listed in the set HOLDERS; a key has one record at most.
local HOLDERS = ns .. ':__dramatis__.holders'
local DAY = 86400000
local function buckets()
  local today = math.floor(now / DAY)
  local out = {}
  for _, b in ipairs(redis.call('SMEMBERS', HOLDERS)) do
    if tonumber(b) < today then redis.call('SREM', HOLDERS, b) else out[#out + 1] = b end
  end
  return out
end
-- A record is kept 7 days after its send, or after its until if later.
local function bucket_for(h) return tostring(math.floor((math.max(h.untl, now) + DAY7) / DAY)) end
local registered = {}
local function register(b)
  if registered[b] then return end
  registered[b] = true
  redis.call('SADD', HOLDERS, b)
  redis.call('PEXPIREAT', HOLDERS .. '.' .. b, (tonumber(b) + 1) * DAY)
end
local function read_holder(key)
  for _, b in ipairs(buckets()) do
    local h = parse_holder(redis.call('HGET', HOLDERS .. '.' .. b, key))
    if h then
      h.bucket = b
      return h
    end
  end
  return nil
end
-- Writes h (in its bucket, or a new one's: then the old record, in bucket 'old', goes).
local function write_holder(key, h, old)
  local b = h.bucket or bucket_for(h)
  if old and old ~= b then redis.call('HDEL', HOLDERS .. '.' .. old, key) end
  redis.call('HSET', HOLDERS .. '.' .. b, key, encode_holder(h))
  register(b)
  h.bucket = b
end
local function exists(h) return redis.call('HEXISTS', hash_key(h.queue), h.rid) == 1 end
-- Pending: queued (in its list) or delayed (in its delay queue's hash), not running.
local function pending(h)
  if is_dq(h.queue) then return exists(h) end
  return redis.call('LPOS', list_key(h.queue), h.rid) ~= false
end
local function put(q, rid, payload)
  redis.call('HSET', hash_key(q), rid, payload)
  redis.call('RPUSH', list_key(q), rid)
end
-- Removes a waiting copy: 1 if it was there (a running one is left alone: 0).
local function take(q, rid)
  if is_dq(q) then
    if redis.call('HDEL', hash_key(q), rid) == 0 then return 0 end
    redis.call('LREM', list_key(q), 0, rid)
    return 1
  end
  if redis.call('LREM', list_key(q), 1, rid) == 0 then return 0 end
  redis.call('HDEL', hash_key(q), rid)
  return 1
end
-- The holder record of 'key' follows message 'id' to its new place.
local function relocate(key, id, q, rid)
  if key == '' then return end
  local h = read_holder(key)
  if h and h.id == id then
    h.queue, h.rid = q, rid
    write_holder(key, h)
  end
end

if command == 'unique' then
  -- ARGV[3..]: per send 7 values: unique key, id, queue, rid, payload, until, flags
  -- (flags: 'd' debounce, 'p' keep the payload in the record). Replies 5 values per send that
  -- was not enqueued (the others were): its index (from 0), then 0, payload, holder id, '' for
  -- a duplicate (the holder as stored), or 2, queue, rid, holder id for a pending holder to
  -- replace (debounce: the caller builds the replacement and calls 'replace'). The holders are
  -- read with one HMGET per bucket; the sends' HSET and RPUSH, and the records' HSET, go out
  -- together at the end, in order.
  local out = {}
  local fresh = {}
  local queues, batches = {}, {}
  local function defer_put(q, rid, payload)
    local b = batches[q]
    if not b then
      b = { fields = {}, ids = {} }
      batches[q] = b
      queues[#queues + 1] = q
    end
    b.fields[#b.fields + 1] = rid
    b.fields[#b.fields + 1] = payload
    b.ids[#b.ids + 1] = rid
    fresh[rid] = true
  end
  local function live(h)
    return fresh[h.rid] or exists(h)
  end
  local function waiting(h)
    if fresh[h.rid] then return true end
    return pending(h)
  end
  local recs = {}
  local writes = {}
  local plain_bucket = bucket_for({ untl = 0 })
  local function defer_hold(key, h, old)
    local b = h.bucket
    if not b then
      if h.untl <= now then b = plain_bucket else b = bucket_for(h) end
    end
    if old and old ~= b then
      redis.call('HDEL', HOLDERS .. '.' .. old, key)
      if writes[old] then writes[old][key] = nil end
    end
    h.bucket = b
    writes[b] = writes[b] or {}
    writes[b][key] = h
    recs[key] = h
  end
  local function hold(key, id, q, rid, untl, flags, payload, old)
    local keep = ''
    if string.find(flags, 'p', 1, true) then keep = payload end
    defer_hold(key, { id = id, queue = q, rid = rid, untl = untl, payload = keep }, old)
  end
  local keys = {}
  for i = 3, #ARGV, 7 do keys[#keys + 1] = ARGV[i] end
  local found = {}
  for _, b in ipairs(buckets()) do
    local values = redis.call('HMGET', HOLDERS .. '.' .. b, unpack(keys))
    for j = 1, #keys do
      if values[j] and found[j] == nil then
        local h = parse_holder(values[j])
        h.bucket = b
        found[j] = h
      end
    end
  end
  local n = 0
  for i = 3, #ARGV, 7 do
    local key, id, q, rid, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local untl, flags = tonumber(ARGV[i + 5]), ARGV[i + 6]
    local h = recs[key]
    if h == nil then h = found[n + 1] end
    if h and h.id == id then
      -- The holder's own copy (its retry): enqueued, and the record follows it.
      defer_put(q, rid, payload)
      h.queue, h.rid = q, rid
      defer_hold(key, h)
    elseif h and (live(h) or now < h.untl) then
      local debounce = string.find(flags, 'd', 1, true) ~= nil
      if debounce and waiting(h) then
        for _, v in ipairs({ n, 2, h.queue, h.rid, h.id }) do out[#out + 1] = v end
      elseif debounce then
        -- The holder runs (or finished, within unique_for): the send is enqueued, the new holder.
        defer_put(q, rid, payload)
        hold(key, id, q, rid, untl, flags, payload, h.bucket)
      else
        local stored = h.payload
        if stored == '' then
          local b = batches[h.queue]
          if fresh[h.rid] then
            for j = 1, #b.fields, 2 do
              if b.fields[j] == h.rid then stored = b.fields[j + 1] end
            end
          else
            stored = redis.call('HGET', hash_key(h.queue), h.rid) or ''
          end
        end
        for _, v in ipairs({ n, 0, stored, h.id, '' }) do out[#out + 1] = v end
      end
    else
      defer_put(q, rid, payload)
      hold(key, id, q, rid, untl, flags, payload, h and h.bucket)
    end
    n = n + 1
  end
  for _, q in ipairs(queues) do
    local b = batches[q]
    for j = 1, #b.fields, 1000 do
      redis.call('HSET', hash_key(q), unpack(b.fields, j, math.min(j + 999, #b.fields)))
    end
    for j = 1, #b.ids, 1000 do
      redis.call('RPUSH', list_key(q), unpack(b.ids, j, math.min(j + 999, #b.ids)))
    end
  end
  for b, records in pairs(writes) do
    local fields = {}
    for key, h in pairs(records) do
      fields[#fields + 1] = key
      fields[#fields + 1] = encode_holder(h)
    end
    for j = 1, #fields, 1000 do
      redis.call('HSET', HOLDERS .. '.' .. b, unpack(fields, j, math.min(j + 999, #fields)))
    end
    if #fields > 0 then register(b) end
  end
  return out

elseif command == 'replace' then
  -- ARGV[3..]: holder key, holder id, its queue, its rid, new queue, new rid, new payload, until,
  -- flags. Replaces a pending holder (same id) if it is still pending there: 1, else 0.
  local key, id, hq, hrid = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local q, rid, payload, untl, flags = ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11]
  local h = read_holder(key)
  if not h or h.id ~= id or h.queue ~= hq or h.rid ~= hrid then return 0 end
  if take(hq, hrid) == 0 then return 0 end
  put(q, rid, payload)
  local keep = ''
  if string.find(flags, 'p', 1, true) then keep = payload end
  h.queue, h.rid, h.payload, h.untl = q, rid, keep, math.max(untl, h.untl)
  write_holder(key, h)
  return 1

elseif command == 'move' then
  -- As the dispatch script's 'move' (a due delayed message to its queue, once), and the holder
  -- record follows. ARGV[3..]: q.DQ, id of the delayed entry, new rid, payload, holder key, id.
  local dq, from, rid, payload = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  if redis.call('HDEL', hash_key(dq), from) == 0 then return 0 end
  local c = canonical(dq)
  put(c, rid, payload)
  relocate(ARGV[7], ARGV[8], c, rid)
  return 1

elseif command == 'tick' then
  -- ARGV[3]: schedule name, ARGV[4]: tick, then optionally ARGV[5..7]: queue, rid, payload.
  -- Claims the tick unless it or a later one was, and enqueues the message (as the dispatch
  -- script's 'enqueue') in the same step: replies the previous last tick ('' for none), or false.
  -- The key types are checked first, so an error leaves nothing written (a script's writes are
  -- not rolled back).
  local ticks = ns .. ':__dramatis__.ticks'
  local last = redis.call('HGET', ticks, ARGV[3])
  if last and tonumber(last) >= tonumber(ARGV[4]) then return false end
  local pause = redis.call('HGET', ns .. ':__dramatis__.schedule_pauses', ARGV[3])
  if pause and string.sub(pause, 1, 7) == 'paused:' then return false end
  local q = ARGV[5]
  if q then
    local lt = redis.call('TYPE', list_key(q)).ok
    local ht = redis.call('TYPE', hash_key(q)).ok
    if (lt ~= 'none' and lt ~= 'list') or (ht ~= 'none' and ht ~= 'hash') then
      return redis.error_reply('WRONGTYPE dramatis: the keys of queue ' .. q .. ' are not a list and a hash')
    end
    put(q, ARGV[6], ARGV[7])
  end
  redis.call('HSET', ticks, ARGV[3], ARGV[4])
  return last or ''

elseif command == 'untick' then
  -- ARGV[3]: name, ARGV[4]: the tick claimed, ARGV[5]: the previous one ('' = none).
  local ticks = ns .. ':__dramatis__.ticks'
  if redis.call('HGET', ticks, ARGV[3]) ~= ARGV[4] then return 0 end
  if ARGV[5] == '' then redis.call('HDEL', ticks, ARGV[3])
  else redis.call('HSET', ticks, ARGV[3], ARGV[5]) end
  return 1

elseif command == 'scan' then
  -- ARGV[3]: a hash (q.msgs, q.DQ.msgs or q.XQ.msgs), ARGV[4]: HSCAN cursor, ARGV[5]: count,
  -- ARGV[6..]: message ids. Replies { next cursor, rid, id, payload, ... } for the entries of
  -- this step whose top-level message_id is one of the ids.
  local wanted = {}
  for i = 6, #ARGV do wanted[ARGV[i]] = true end
  local step = redis.call('HSCAN', ARGV[3], ARGV[4], 'COUNT', tonumber(ARGV[5]))
  local out = { step[1] }
  local items = step[2]
  -- One id (findMessage, cancel): a payload without its text at all is skipped by a plain find.
  local only = #ARGV == 6 and ARGV[6] or nil
  for i = 1, #items, 2 do
    local payload = items[i + 1]
    if only and not string.find(payload, only, 1, true) then payload = '' end
    for id in string.gmatch(payload, '"message_id"%s*:%s*"([^"]+)"') do
      if wanted[id] then
        local ok, m = pcall(cjson.decode, payload)
        if ok and type(m) == 'table' and m.message_id == id then
          out[#out + 1] = items[i]
          out[#out + 1] = id
          out[#out + 1] = payload
        end
        break
      end
    end
  end
  return out

elseif command == 'cancel' then
  -- ARGV[3]: message id, ARGV[4..]: queue, rid of each copy found. Removes the waiting ones and
  -- marks a running one. Replies { removed, running }.
  local removed, running = 0, 0
  for i = 4, #ARGV, 2 do
    local q, rid = ARGV[i], ARGV[i + 1]
    if take(q, rid) == 1 then
      removed = removed + 1
    elseif not is_dq(q) and redis.call('HEXISTS', hash_key(q), rid) == 1 then
      running = 1
    end
  end
  if running == 1 then
    redis.call('SET', ns .. ':__dramatis__.cancel.' .. ARGV[3], '1', 'PX', 3600000)
  end
  return { removed, running }

elseif command == 'cancel_running' then
  -- ARGV[3]: message id, ARGV[4..]: canonical queues. Looks for the message among the running
  -- ones (every broker's ack set of each queue: O(messages running)) and marks it: 1, else 0.
  local id = ARGV[3]
  local needle = '"message_id":"' .. id .. '"'
  local brokers = redis.call('ZRANGE', ns .. ':__heartbeats__', 0, -1)
  for i = 4, #ARGV do
    local q = ARGV[i]
    for _, w in ipairs(brokers) do
      local ids = redis.call('SMEMBERS', ns .. ':__acks__.' .. w .. '.' .. q)
      for j = 1, #ids, 1000 do
        local part = { unpack(ids, j, math.min(j + 999, #ids)) }
        local payloads = redis.call('HMGET', hash_key(q), unpack(part))
        for k = 1, #part do
          local payload = payloads[k]
          if payload and string.find(payload, needle, 1, true) then
            local ok, m = pcall(cjson.decode, payload)
            if ok and type(m) == 'table' and m.message_id == id then
              redis.call('SET', ns .. ':__dramatis__.cancel.' .. id, '1', 'PX', 3600000)
              return 1
            end
          end
        end
      end
    end
  end
  return 0

elseif command == 'locate' then
  -- ARGV[3]: queue (q), ARGV[4]: rid. Replies 'ready', 'running' or false (gone).
  local q, rid = ARGV[3], ARGV[4]
  if redis.call('HEXISTS', hash_key(q), rid) == 0 then return false end
  if redis.call('LPOS', list_key(q), rid) then return 'ready' end
  return 'running'

elseif command == 'take' then
  -- ARGV[3..]: per message 7 values: kind ('q', 'dq' or 'dead'), source queue (q, q.DQ or the
  -- canonical name for 'dead'), rid, target queue ('' = delete), new rid, payload, holder key.
  -- Each is taken from where it waits (not running) and, with a target, enqueued there ready.
  -- Replies how many were taken.
  local n = 0
  for i = 3, #ARGV, 7 do
    local kind, src, rid, target = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local ok = 0
    if kind == 'dead' then
      if redis.call('ZREM', ns .. ':' .. src .. '.XQ', rid) == 1 then
        redis.call('HDEL', ns .. ':' .. src .. '.XQ.msgs', rid)
        ok = 1
      end
    else
      ok = take(src, rid)
    end
    if ok == 1 then
      n = n + 1
      if target ~= '' then
        put(target, ARGV[i + 4], ARGV[i + 5])
        local m = cjson.decode(ARGV[i + 5])
        relocate(ARGV[i + 6], m.message_id, target, ARGV[i + 4])
      end
    end
  end
  return n

elseif command == 'ready' then
  -- ARGV[3]: queue, ARGV[4]: offset from the newest, ARGV[5]: limit. Replies
  -- { total, rid, payload, ... }, newest first.
  local list = list_key(ARGV[3])
  local total = redis.call('LLEN', list)
  local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
  local out = { total }
  if offset >= total or limit <= 0 then return out end
  local ids = redis.call('LRANGE', list, -(offset + limit), -(offset + 1))
  if #ids == 0 then return out end
  local payloads = redis.call('HMGET', hash_key(ARGV[3]), unpack(ids))
  for i = #ids, 1, -1 do
    out[#out + 1] = ids[i]
    out[#out + 1] = payloads[i] or ''
  end
  return out

elseif command == 'held' then
  -- ARGV[3]: queue (q: running, q.DQ: delayed), ARGV[4]: offset, ARGV[5]: limit. The ids in
  -- every broker's ack set for the queue whose message is still there, plus, for q.DQ, those
  -- waiting in its list (newest first, then the held ones by id). Replies
  -- { total, rid, payload, owner, ... }.
  local q = ARGV[3]
  local hash = hash_key(q)
  local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
  local held = {}
  local owner = {}
  for _, w in ipairs(redis.call('ZRANGE', ns .. ':__heartbeats__', 0, -1)) do
    for _, rid in ipairs(redis.call('SMEMBERS', ns .. ':__acks__.' .. w .. '.' .. q)) do
      if owner[rid] == nil and redis.call('HEXISTS', hash, rid) == 1 then
        held[#held + 1] = rid
        owner[rid] = w
      end
    end
  end
  table.sort(held)
  local llen = 0
  if is_dq(q) then llen = redis.call('LLEN', list_key(q)) end
  local out = { llen + #held }
  local page = {}
  if offset < llen then
    local ids = redis.call('LRANGE', list_key(q), -math.min(offset + limit, llen), -(offset + 1))
    for i = #ids, 1, -1 do page[#page + 1] = ids[i] end
  end
  local start = math.max(offset - llen, 0)
  for i = start + 1, #held do
    if #page >= limit then break end
    page[#page + 1] = held[i]
  end
  if #page == 0 then return out end
  local payloads = redis.call('HMGET', hash, unpack(page))
  for i = 1, #page do
    out[#out + 1] = page[i]
    out[#out + 1] = payloads[i] or ''
    out[#out + 1] = owner[page[i]] or ''
  end
  return out

elseif command == 'dead' then
  -- ARGV[3]: canonical queue, ARGV[4]: offset, ARGV[5]: limit. Replies
  -- { total, rid, payload, score, ... }, newest first.
  local xq = ns .. ':' .. ARGV[3] .. '.XQ'
  local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
  local out = { redis.call('ZCARD', xq) }
  if limit <= 0 then return out end
  local ids = redis.call('ZREVRANGE', xq, offset, offset + limit - 1, 'WITHSCORES')
  for i = 1, #ids, 2 do
    out[#out + 1] = ids[i]
    out[#out + 1] = redis.call('HGET', xq .. '.msgs', ids[i]) or ''
    out[#out + 1] = ids[i + 1]
  end
  return out

elseif command == 'workers' then
  -- ARGV[3]: heartbeat timeout, ARGV[4]: the id suffix of dramatis brokers, ARGV[5..]: canonical
  -- queues. Replies { records..., '', then per other member of Dramatiq's heartbeat set heard
  -- from within the timeout: id, score, how many messages it holds, then per held message of
  -- the queues (its ack sets of q): queue, payload }.
  local index = ns .. ':__dramatis__.workers'
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  local out = {}
  local ids = redis.call('ZRANGE', index, 0, -1)
  for _, id in ipairs(ids) do
    local r = redis.call('GET', ns .. ':__dramatis__.worker.' .. id)
    if r then out[#out + 1] = r end
  end
  out[#out + 1] = ''
  local suffix = ARGV[4]
  local beats = redis.call('ZRANGEBYSCORE', ns .. ':__heartbeats__', now - tonumber(ARGV[3]),
    '+inf', 'WITHSCORES')
  for i = 1, #beats, 2 do
    local w = beats[i]
    if string.sub(w, -#suffix) ~= suffix then
      local held = {}
      for k = 5, #ARGV do
        local q = ARGV[k]
        local rids = redis.call('SRANDMEMBER', ns .. ':__acks__.' .. w .. '.' .. q, 100)
        if #rids > 0 then
          local payloads = redis.call('HMGET', hash_key(q), unpack(rids))
          for m = 1, #rids do
            if payloads[m] then
              held[#held + 1] = q
              held[#held + 1] = payloads[m]
            end
          end
        end
      end
      out[#out + 1] = w
      out[#out + 1] = beats[i + 1]
      out[#out + 1] = #held / 2
      for _, v in ipairs(held) do out[#out + 1] = v end
    end
  end
  return out
end
return redis.error_reply('dramatis: unknown operation ' .. tostring(command))
`;
