-- Queue one page, once ever: the job's key is its identity (alert, level, person, channel), so a second watcher, a
-- replayed change or a restart finds it and writes nothing.
-- KEYS[1] the due set, KEYS[2] the job
-- ARGV[1] prefix, [2] job id, [3] alert id, [4] level, [5] person, [6] channel, [7] reason, [8] rota level,
-- ARGV[9] now (epoch), [10] job ttl (seconds)
-- Returns 1 when queued now, 0 when it was queued before.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], 'job_id', ARGV[2], 'alert_id', ARGV[3], 'level', ARGV[4], 'person', ARGV[5],
  'channel', ARGV[6], 'reason', ARGV[7], 'rota_level', ARGV[8], 'queued_at', ARGV[9], 'attempts', 0,
  'state', 'queued')
redis.call('EXPIRE', KEYS[2], ARGV[10])
redis.call('ZADD', KEYS[1], ARGV[9], ARGV[2])
return 1
