-- Alerts for the HTTP list: the open and acknowledged ones of some regions and/or the newest of every status.
-- ARGV[1] prefix, [2] include the active sets (0|1), [3] how many of the newest alerts to scan (0 = none)
-- ARGV[4..] regions (of the active sets to read, and the only ones kept from the newest)
local wanted, seen, out = {}, {}, {}
for i = 4, #ARGV do
  wanted[ARGV[i]] = true
end
local function add(id)
  if seen[id] then
    return
  end
  seen[id] = true
  local h = load(id)
  if h and wanted[h.region] then
    out[#out + 1] = render(h)
  end
end
if ARGV[2] == '1' then
  for i = 4, #ARGV do
    for _, id in ipairs(redis.call('SMEMBERS', active_key(ARGV[i]))) do
      add(id)
    end
  end
end
local newest = tonumber(ARGV[3])
if newest > 0 then
  for _, id in ipairs(redis.call('ZREVRANGE', PREFIX .. ':all', 0, newest - 1)) do
    add(id)
  end
end
return out
