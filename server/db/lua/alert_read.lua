-- Read alerts by id, rendered as JSON (missing ones are skipped).
-- ARGV[1] prefix, ARGV[2..] alert ids
local out = {}
for i = 2, #ARGV do
  local h = load(ARGV[i])
  if h then
    out[#out + 1] = render(h)
  end
end
return out
