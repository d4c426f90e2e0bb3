-- Issue a tour's join code, or return the current one. Issuing kills the code it replaces.
-- KEYS[1] the tour's current-code key
-- ARGV[1] the new code, ARGV[2] its record (JSON), ARGV[3] its ttl (seconds), ARGV[4] the code key prefix,
-- ARGV[5] "new" (always issue) or "get" (the current code if it still works, else a new one)
-- Returns {code, record}.
local current = redis.call('GET', KEYS[1])
if current and ARGV[5] == 'get' then
  local record = redis.call('GET', ARGV[4] .. current)
  if record then
    return {current, record}
  end
end
if current then
  redis.call('DEL', ARGV[4] .. current)
end
redis.call('SET', ARGV[4] .. ARGV[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return {ARGV[1], ARGV[2]}
