-- The open and acknowledged alerts of some regions, and the changes stream's last id, read in one step: a change
-- is either in the snapshot or after its seq, never between.
-- KEYS[1] the changes stream, KEYS[2] the set of every region that ever had an alert
-- ARGV[1] prefix, ARGV[2..] regions
-- Returns {last id, number of known regions, alert json...}
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local out = {'0-0', redis.call('SCARD', KEYS[2])}
if #last > 0 then
  out[1] = last[1][1]
end
for i = 2, #ARGV do
  for _, id in ipairs(redis.call('SMEMBERS', active_key(ARGV[i]))) do
    local h = load(id)
    if h then
      out[#out + 1] = render(h)
    end
  end
end
return out
