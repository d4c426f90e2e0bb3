-- Add details to the open or acknowledged alert of one dedup key without counting a firing (what the pool
-- dispatched for an incident, for instance): its condition did not fire again, so `count` stays. Once per token.
-- KEYS[1] the changes stream, KEYS[2] the applied marker, KEYS[3] the dedup key
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] marker ttl, [6] unused
-- ARGV[7..] details as name, JSON value pairs
-- Returns {"replay" | "new", "<opened>|<seq>|<alert JSON>" or "" (changed nothing)}
local done = redis.call('GET', KEYS[2])
if done then
  return replayed(done)
end
local id, h = active(KEYS[3])
if not id then
  return {'new', mark_applied(KEYS[2], ARGV[5])}
end
local set = {'updated_at', ARGV[3]}
add_details(set, 7)
redis.call('HSET', alert_key(id), unpack(set))
h = load(id)
local seq, json = publish(KEYS[1], h, ARGV[2])
return {'new', mark_applied(KEYS[2], ARGV[5], '0', seq, id, json)}
