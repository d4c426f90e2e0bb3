-- Read what a roll-up or tally needs from some tours of one shard, in one call: the records of one check (or one
-- notice) from each tour's folded state, the travellers recorded as its people, and their names.
-- KEYS: per tour, its state hash, people set and names hash (3 keys a tour, one shard's slot)
-- ARGV: per tour, the HSCAN pattern of its records
-- Returns per tour {records (flat field, value list), people (list of subs), names (flat sub, name list)}.
local out = {}
for i = 1, #ARGV do
  local base = (i - 1) * 3
  local records = {}
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[base + 1], cursor, 'MATCH', ARGV[i], 'COUNT', 1000)
    cursor = page[1]
    for _, item in ipairs(page[2]) do
      records[#records + 1] = item
    end
  until cursor == '0'
  out[i] = {records, redis.call('SMEMBERS', KEYS[base + 2]), redis.call('HGETALL', KEYS[base + 3])}
end
return out
