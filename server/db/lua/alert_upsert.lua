-- Open the alert for one condition and subject, or update the open/acknowledged one (count + 1, details merged,
-- severity only rises). Once per token: a replayed effect returns whether its first application opened the alert, and the
-- alert as it is now.
-- KEYS[1] the changes stream, KEYS[2] the applied marker of this token, KEYS[3] the dedup key
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] marker ttl, [6] index bound
-- ARGV[7] kind, [8] dedup key name, [9] severity, [10] region, [11] summary, [12] tour id ('' = none)
-- ARGV[13..] details as name, JSON value pairs
-- Returns {"replay" | "new", "<opened>|<seq>|<alert JSON>" or "" (changed nothing)}
local done = redis.call('GET', KEYS[2])
if done then
  return replayed(done)
end
local now, severity = ARGV[3], ARGV[9]
local id, h = active(KEYS[3])
local opened, set
if id then
  opened = '0'
  set = {'count', tonumber(h.count) + 1, 'updated_at', now, 'summary', ARGV[11]}
  if RANK[severity] > RANK[h.severity] then
    set[#set + 1] = 'severity'
    set[#set + 1] = severity
  end
  add_details(set, 13)
  redis.call('HSET', alert_key(id), unpack(set))
else
  opened = '1'
  id = 'A' .. redis.call('INCR', PREFIX .. ':next')
  local region = ARGV[10]
  set = {'alert_id', id, 'kind', ARGV[7], 'dedup_key', ARGV[8], 'severity', severity, 'status', 'open',
               'region', region, 'summary', ARGV[11], 'count', 1, 'escalation_level', 0,
               'opened_at', now, 'updated_at', now}
  if ARGV[12] ~= '' then
    set[#set + 1] = 'tour_id'
    set[#set + 1] = ARGV[12]
  end
  add_details(set, 13)
  redis.call('HSET', alert_key(id), unpack(set))
  redis.call('SET', KEYS[3], id)
  redis.call('SADD', active_key(region), id)
  redis.call('SADD', PREFIX .. ':regions', region)
  redis.call('ZADD', PREFIX .. ':all', ARGV[4], id)
  redis.call('ZREMRANGEBYRANK', PREFIX .. ':all', 0, -(tonumber(ARGV[6]) + 1))
  audit(id, {at = now, by = 'system', action = 'opened', severity = severity})
  h = {}
end
for i = 1, #set, 2 do -- the record as it now is, without reading it back
  h[set[i]] = set[i + 1]
end
local seq, json = publish(KEYS[1], h, ARGV[2])
return {'new', mark_applied(KEYS[2], ARGV[5], opened, seq, id, json)}
