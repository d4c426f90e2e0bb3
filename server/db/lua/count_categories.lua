-- Count a rating's complaint categories toward its route once per token, in the UTC-day bucket of its `at`, and
-- keep the route's window total (all in the route's slot): each call first takes out of the total the buckets
-- that left the window, so a judgement reads one small hash, not a hash per day of the window.
-- KEYS[1] the token marker, KEYS[2] the route's window total (hash), KEYS[3] the days it holds (set)
-- ARGV[1] marker ttl, ARGV[2] ttl of the total and days (window + 2 days), ARGV[3] bucket ttl (longer),
-- ARGV[4] judge ('1' | '0'), ARGV[5] the bucket key prefix (`...:cat:`), ARGV[6] the window's first day,
-- ARGV[7] the rating's day, ARGV[8..] the categories (+1 each)
-- A bucket's key is built from the prefix: it shares the route's hash tag, so it is in the slot of KEYS.
-- Returns the window's counts as a flat list (category, count, ...), or {} when not judging
local first, day, prefix = ARGV[6], ARGV[7], ARGV[5]
for _, old in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if old < first then
    local flat = redis.call('HGETALL', prefix .. old)
    for i = 1, #flat, 2 do
      if redis.call('HINCRBY', KEYS[2], flat[i], -tonumber(flat[i + 1])) <= 0 then
        redis.call('HDEL', KEYS[2], flat[i])
      end
    end
    redis.call('DEL', prefix .. old)
    redis.call('SREM', KEYS[3], old)
  end
end
if #ARGV >= 8 and day >= first and redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  local bucket = prefix .. day
  for i = 8, #ARGV do
    redis.call('HINCRBY', bucket, ARGV[i], 1)
    redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
  end
  redis.call('EXPIRE', bucket, tonumber(ARGV[3]))
  redis.call('SADD', KEYS[3], day)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[2]))
end
if ARGV[4] ~= '1' then
  return {}
end
return redis.call('HGETALL', KEYS[2])
