-- A consumer's flush: save the folded states of some tours and XACK the entries they folded, in one atomic step,
-- only while the caller holds the shard's lease. A watcher that lost the lease must neither write over what the
-- new owner saved nor ack entries the new owner claimed (an XACK counts for the whole group); and an entry is
-- acked in the same step that saves what folding it changed, so nothing acked can miss from a saved state.
-- KEYS[1] the lease, KEYS[2] the stream, KEYS[3..] the state hashes
-- ARGV[1] watcher id, ARGV[2] group, ARGV[3] n = how many entry ids, ARGV[4 .. 3+n] the entry ids, then for each
-- state hash in KEYS order: how many arguments follow, that many (field, value pairs) to set, how many fields
-- follow, and that many fields to delete (those of an older layout, rewritten in this save)
-- Returns how many entries were acked, or -1 (and nothing written) when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local CHUNK = 1000 -- arguments per call, far below Lua's unpack limit; even, so pairs stay whole
local n = tonumber(ARGV[3])
local pos = 4 + n
for k = 3, #KEYS do
  for _, command in ipairs({'HSET', 'HDEL'}) do
    local last = pos + tonumber(ARGV[pos])
    pos = pos + 1
    while pos <= last do
      local stop = math.min(pos + CHUNK - 1, last)
      redis.call(command, KEYS[k], unpack(ARGV, pos, stop))
      pos = stop + 1
    end
  end
end
local acked = 0
for first = 4, 3 + n, CHUNK do
  acked = acked + redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, first, math.min(first + CHUNK - 1, 3 + n)))
end
return acked
