-- Set (or move) one deadline in a shard, unless it already fired (a replayed event must not re-arm it).
-- KEYS[1] the shard's deadline zset, KEYS[2] the deadline's payload, KEYS[3] its fired marker
-- ARGV[1] deadline id, ARGV[2] due (epoch seconds), ARGV[3] payload (msgpack event)
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
return 1
