-- Finish one attempt of a page, in the same step that records it in the alert's audit and sets the alert's
-- `notified` (the latest result per person): a page is recorded exactly when it is marked, never one without the
-- other. Only the attempt that holds the claim may finish it: a sender whose lease ran out (another took the page
-- over) changes nothing.
-- KEYS[1] the due set, KEYS[2] the job, KEYS[3] the changes stream
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] job id, [6] attempt,
-- ARGV[7] next state: done | queued (retry at ARGV[8]) | failed, [8] next due (epoch), [9] result ("sent",
-- "http 503", "timeout", ...), [10] the job's ttl once finished, [11] the person's name (for the board)
-- Returns 1 when recorded, 0 for a stale attempt.
local job = redis.call('HMGET', KEYS[2], 'state', 'attempts', 'alert_id', 'person', 'channel', 'level')
if job[1] ~= 'sending' or job[2] ~= ARGV[6] then
  return 0
end
local id, person, channel, level = job[3], job[4], job[5], tonumber(job[6])
local state, result, now = ARGV[7], ARGV[9], ARGV[3]
if state == 'queued' then
  redis.call('ZADD', KEYS[1], ARGV[8], ARGV[5])
else
  redis.call('ZREM', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[10])
end
redis.call('HSET', KEYS[2], 'state', state, 'result', result, 'finished_at', ARGV[4])
local h = load(id)
if not h then
  return 1
end
local entry = {at = now, by = 'system', action = 'notified', person = person, channel = channel, level = level,
  result = result, attempt = tonumber(ARGV[6])}
if state == 'queued' then
  entry.retry = true
end
audit(id, entry)
local notified = cjson.decode(h.notified or '{}')
if type(notified) ~= 'table' then
  notified = {}
end
notified[person] = {result = result, channel = channel, level = level, at = now, final = state ~= 'queued',
  name = ARGV[11]}
h.notified = cjson.encode(notified)
redis.call('HSET', alert_key(id), 'notified', h.notified)
publish(KEYS[3], h, ARGV[2])
return 1
