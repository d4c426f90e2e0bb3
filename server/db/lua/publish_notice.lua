-- Publish one push (a notice, or an incident change for guides) once, however often it is asked for.
-- KEYS[1] the sent marker, KEYS[2] the notices stream
-- ARGV[1] the push (JSON), ARGV[2] marker ttl (seconds), ARGV[3] stream maxlen (approximate)
local seq = redis.call('GET', KEYS[1])
if seq then
  return seq
end
seq = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'n', ARGV[1])
redis.call('SET', KEYS[1], seq, 'EX', ARGV[2])
return seq
