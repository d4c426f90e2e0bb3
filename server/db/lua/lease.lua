-- Take or renew a shard's lease. KEYS[1] the lease; ARGV[1] watcher id, ARGV[2] ttl (ms)
-- Returns 1 when the caller holds the lease afterwards.
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
