-- Resolve the open or acknowledged alert of one dedup key, if there is one (a system resolution, e.g. an
-- incident its guide resolved). Once per token.
-- KEYS[1] the changes stream, KEYS[2] the applied marker, KEYS[3] the dedup key
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] marker ttl, [6] retention
-- ARGV[7] by, [8] note
-- Returns {"replay" | "new", "<opened>|<seq>|<alert JSON>" or "" (changed nothing)}
local done = redis.call('GET', KEYS[2])
if done then
  return replayed(done)
end
local id, h = active(KEYS[3])
if not id then
  return {'new', mark_applied(KEYS[2], ARGV[5])}
end
local now, by, note = ARGV[3], ARGV[7], ARGV[8]
audit(id, {at = now, by = by, action = 'resolve', from = h.status, to = 'resolved', note = note})
h.status, h.updated_at, h.resolved_at = 'resolved', now, now
redis.call('HSET', alert_key(id), 'status', 'resolved', 'updated_at', now, 'resolved_at', now)
if note ~= '' then
  add_note(id, h, now, by, note)
end
close(id, h, ARGV[6])
local seq, json = publish(KEYS[1], h, ARGV[2])
return {'new', mark_applied(KEYS[2], ARGV[5], '0', seq, id, json)}
