-- A person acts on an alert: ack, resolve or assign, by the transition table alerts/store.py passes in (the state
-- machine lives there; this script applies it atomically). Once per token when a token is given.
-- KEYS[1] the changes stream, KEYS[2] the applied marker (or the changes stream again: no token)
-- ARGV[1] prefix, [2] changes maxlen, [3] now (ISO), [4] now (epoch), [5] marker ttl, [6] retention
-- ARGV[7] alert id, [8] action, [9] by, [10] note ('' = none), [11] assignee ('' = none), [12] has token (0|1)
-- ARGV[13..] the action's transitions as from, to pairs; to '' = a no-op from that status
-- Returns {"not_found"} | {"conflict", status} | {"noop", json} | {"replay" | "new", marker}
local has_token = ARGV[12] == '1'
if has_token then
  local done = redis.call('GET', KEYS[2])
  if done then
    return {'replay', done}
  end
end
local id, action, by, note, assignee = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local h = load(id)
if not h then
  return {'not_found'}
end
local to
for i = 13, #ARGV, 2 do
  if ARGV[i] == h.status then
    to = ARGV[i + 1]
  end
end
if to == nil then
  return {'conflict', h.status}
end
if to == '' then
  return {'noop', render(h)}
end
local now = ARGV[3]
local entry = {at = now, by = by, action = action, from = h.status, to = to}
if note ~= '' then
  entry.note = note
end
local set = {'status', to, 'updated_at', now}
-- when it was first acknowledged and when resolved: the desk's MTTA and MTTR (reports)
if to == 'acknowledged' and not h.acked_at then
  h.acked_at = now
  set[#set + 1] = 'acked_at'
  set[#set + 1] = now
elseif to == 'resolved' then
  h.resolved_at = now
  set[#set + 1] = 'resolved_at'
  set[#set + 1] = now
end
if action == 'assign' then
  entry.assignee = assignee
  h.assignee = assignee
  set[#set + 1] = 'assignee'
  set[#set + 1] = assignee
end
audit(id, entry)
h.status, h.updated_at = to, now
redis.call('HSET', alert_key(id), unpack(set))
if note ~= '' then
  add_note(id, h, now, by, note)
end
if to == 'resolved' then
  close(id, h, ARGV[6])
end
local seq, json = publish(KEYS[1], h, ARGV[2])
if has_token then
  return {'new', mark(KEYS[2], ARGV[5], '0', seq, json)}
end
return {'new', '0|' .. seq .. '|' .. json}
