-- Record a traveller of a tour (joined or connected with a token of it), once: the set of the tour's people (and
-- their display name, if they gave one) and, the first time only, a `person` event in the shard's stream so the
-- watcher folds them into the tour's state.
-- KEYS[1] the tour's people set, KEYS[2] the shard's event stream, KEYS[3] the tour's names hash
-- ARGV[1] the sub, ARGV[2] the event (msgpack), ARGV[3] the display name or ''
-- Returns 1 when the person is new, else 0.
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
