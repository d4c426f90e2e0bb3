-- Send a safety check to one tour, once: it joins the tour's open checks (what a phone that connects is sent)
-- and, the first time only, a `safety_check` event goes into the shard's stream for the watcher to fold and push.
-- KEYS[1] the tour's open checks, KEYS[2] the shard's event stream
-- ARGV[1] the check id, ARGV[2] its deadline (epoch s), ARGV[3] the event (msgpack)
-- Returns the event's stream id, or '' when the tour had the check already.
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then
  return ''
end
return redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
