-- Save a tour's folded state (meta and changed days), only while the caller holds the shard's lease: a watcher
-- that lost it must never write over what the new owner saved. KEYS[1] the lease, KEYS[2] the state hash
-- ARGV[1] watcher id, ARGV[2..] field, value pairs. Returns 1 when saved, 0 when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1
