-- A traveller joined or connected with a token of a tour: remember them, and the first time tell the watcher with
-- a `seen` event in the tour's shard stream (one slot: the set and the stream).
-- KEYS[1] the tour's seen set, KEYS[2] the shard's event stream
-- ARGV[1] the traveller's sub, ARGV[2] the `seen` event (msgpack), ARGV[3] the set's ttl (seconds)
-- Returns 1 when the traveller is new to the tour, else 0
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if added == 1 then
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
end
return added
