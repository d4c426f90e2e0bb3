-- Store one client event and its idempotency key in one atomic step (one shard's hash slot).
-- KEYS[1] idempotency key, KEYS[2] the shard's event stream, KEYS[3] the incident guard (or any key of the slot)
-- ARGV[1] fingerprint of the message, ARGV[2] the event (msgpack), ARGV[3] idempotency ttl (seconds)
-- ARGV[4] mode: "plain" | "create" (a new incident) | "update" (an update of an existing incident)
-- ARGV[5] create: the tour id; update: the new status or ""
-- Returns {outcome, seq}: outcome "new" | "dup" | "conflict" | "not_found" | "closed"
local prev = redis.call('GET', KEYS[1])
if prev then
  local sep = string.find(prev, '|', 1, true)
  local seq = string.sub(prev, sep + 1)
  if string.sub(prev, 1, sep - 1) == ARGV[1] then
    return {'dup', seq}
  end
  return {'conflict', seq}
end
local mode = ARGV[4]
if mode == 'update' then
  local status = redis.call('HGET', KEYS[3], 'status')
  if not status then
    return {'not_found', ''}
  end
  if status == 'resolved' then
    return {'closed', ''}
  end
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[3], 'status', ARGV[5])
  end
elseif mode == 'create' then
  redis.call('HSET', KEYS[3], 'status', 'open', 'tour_id', ARGV[5])
end
local seq = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. seq, 'EX', ARGV[3])
return {'new', seq}
