-- In a tour's shard slot, once per alert change: append the supervisor's `alert_action` event (so the watcher
-- folds it in stream order) and, for a resolved incident alert, the incident's `incident_update` with its guard.
-- KEYS[1] the shard's event stream, KEYS[2] the done marker, KEYS[3] the incident guard (or any key of the slot)
-- ARGV[1] the alert_action event (msgpack), ARGV[2] the incident_update event (msgpack) or '', ARGV[3] marker ttl
-- Returns the alert_action event's stream id ('' when it was appended before)
if redis.call('EXISTS', KEYS[2]) == 1 then
  return ''
end
local seq = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], 'status') ~= 'resolved' then
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
  redis.call('HSET', KEYS[3], 'status', 'resolved')
end
redis.call('SET', KEYS[2], seq, 'EX', ARGV[3])
return seq
