-- Move the shard's due deadlines into its event stream, each exactly once, in one atomic step.
-- KEYS[1] the deadline zset, KEYS[2] the shard's event stream
-- ARGV[1] now (epoch seconds), ARGV[2] at most this many, ARGV[3] key prefix of payloads ("...:deadline:"),
-- ARGV[4] key prefix of fired markers ("...:fired:"), ARGV[5] fired marker ttl (seconds)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  local payload = redis.call('GET', ARGV[3] .. id)
  redis.call('ZREM', KEYS[1], id)
  if payload then
    redis.call('XADD', KEYS[2], '*', 'e', payload, 'fired_at', ARGV[1])
    redis.call('DEL', ARGV[3] .. id)
  end
  redis.call('SET', ARGV[4] .. id, '1', 'EX', tonumber(ARGV[5]))
end
return #due
