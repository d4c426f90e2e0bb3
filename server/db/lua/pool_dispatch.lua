-- A held resource is on its way: held -> dispatched (after pool_lib.lua).
-- KEYS[OWN] the resource's hash. OP: resource_id, by (who confirmed it).
-- Returns JSON {status: "ok" | "not_found" | "conflict", resource}.
local id = OP.resource_id
local r = resource(id)
if not r then
  return cjson.encode({status = 'not_found'})
end
if r.state ~= 'held' then
  return cjson.encode({status = 'conflict', resource = r})
end
redis.call('HSET', KEYS[OWN], 'state', 'dispatched', 'dispatched_by', OP.by, 'dispatched_at', NOW)
r.state, r.dispatched_by, r.dispatched_at = 'dispatched', OP.by, NOW
audit('dispatched', id, {'incident_id', r.held_by, 'by', OP.by})
return cjson.encode({status = 'ok', resource = r})
