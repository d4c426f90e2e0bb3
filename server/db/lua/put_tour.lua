-- Register (or change) a tour and append its `tour` event, in one atomic step in the tour's shard slot.
-- KEYS[1] the tour's hash, KEYS[2] the shard's event stream
-- ARGV[1] the tour event (msgpack), ARGV[2..] the hash as field, value pairs
-- Returns the new event's stream id, or "" when the stored tour is already identical (an idempotent PUT).
local n = (#ARGV - 1) / 2
if redis.call('HLEN', KEYS[1]) == n then
  local same = true
  for i = 2, #ARGV, 2 do
    if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then
      same = false
      break
    end
  end
  if same then
    return ''
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
