-- One page of a region's open and acknowledged alerts, for a board's snapshot read in pages: a page renders at
-- most about COUNT alerts, so no call holds the server long however many alerts a region has (a whole-region
-- script blocked Valkey 42 ms at 1,500 alerts). The caller stitches pages and the changes after them together.
-- KEYS[1] the region's active set
-- ARGV[1] prefix (alert_lib), ARGV[2] SSCAN cursor, ARGV[3] COUNT
-- Returns {next cursor ("0": done), alert json...}
local page = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = {page[1]}
for _, id in ipairs(page[2]) do
  local h = load(id)
  if h then
    out[#out + 1] = render(h)
  end
end
return out
