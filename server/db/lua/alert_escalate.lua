-- Escalate an alert to a level: only while it is open (unacknowledged) and below that level; severity rises one
-- step (capped at critical). Serialized with alert_act.lua by Redis, so an ack racing this has one winner.
-- KEYS[1] the changes stream, KEYS[2] the applied marker
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] marker ttl, [6] retention
-- ARGV[7] alert id, [8] level
-- Returns {"replay" | "new", "<opened>|<seq>|<alert JSON>" or "" (changed nothing)}
local done = redis.call('GET', KEYS[2])
if done then
  return replayed(done)
end
local id, level = ARGV[7], tonumber(ARGV[8])
local h = load(id)
if not h or h.status ~= 'open' or tonumber(h.escalation_level) >= level then
  return {'new', mark_applied(KEYS[2], ARGV[5])}
end
local now = ARGV[3]
local severity = STEPS[math.min(RANK[h.severity] + 1, #STEPS)]
audit(id, {at = now, by = 'system', action = 'escalate', level = level, from = h.severity, to = severity})
h.escalation_level, h.severity, h.updated_at = tostring(level), severity, now
redis.call('HSET', alert_key(id), 'escalation_level', level, 'severity', severity, 'updated_at', now)
local seq, json = publish(KEYS[1], h, ARGV[2])
return {'new', mark_applied(KEYS[2], ARGV[5], '0', seq, id, json)}
