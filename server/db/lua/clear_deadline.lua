-- Clear one deadline: it will not fire. KEYS[1] zset, KEYS[2] payload; ARGV[1] deadline id
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
