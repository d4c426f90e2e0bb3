-- Count one complaint of a route in a category, once per token. Returns the route's counts (flat list).
-- KEYS[1] the route's category counts (hash), KEYS[2] the token marker; ARGV[1] category, ARGV[2] marker ttl
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return redis.call('HGETALL', KEYS[1])
