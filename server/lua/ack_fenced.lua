-- XACK entries, only while the caller holds the shard's lease: an XACK counts for the whole group, so a watcher
-- that lost the lease could otherwise ack entries the new owner has claimed and not yet folded.
-- KEYS[1] the lease, KEYS[2] the stream; ARGV[1] watcher id, ARGV[2] group, ARGV[3..] entry ids
-- Returns the number acked, or -1 when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
return redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
