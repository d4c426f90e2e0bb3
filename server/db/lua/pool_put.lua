-- Add or update one resource of a region (after pool_lib.lua).
-- KEYS[OWN] the resource's hash. OP: resource (resource_id, kind, region, capacity, partner, contact, and lat,
-- lon as strings or absent).
-- A held or dispatched resource keeps its hold (its capacity, partner and contact may change, not its kind).
-- A resource that is free afterwards serves the head of its kind's queue.
-- Returns JSON {status: "ok" | "conflict", resource, served, message}.
local new = OP.resource
local id = new.resource_id
local old = resource(id)
if old and old.state ~= 'free' and old.kind ~= new.kind then
  return cjson.encode({status = 'conflict', resource = old,
                       message = 'cannot change the kind of a ' .. old.state .. ' resource'})
end
if old and old.state == 'free' then
  redis.call('ZREM', FREE[old.kind], id)
end
redis.call('HSET', KEYS[OWN], 'resource_id', id, 'kind', new.kind, 'region', new.region,
  'capacity', new.capacity, 'partner', new.partner, 'contact', new.contact, 'updated_at', NOW)
if new.lat then
  redis.call('HSET', KEYS[OWN], 'lat', new.lat, 'lon', new.lon)
else
  redis.call('HDEL', KEYS[OWN], 'lat', 'lon')
end
local served = nil
if not old or old.state == 'free' then
  redis.call('SADD', ALL, id)
  audit(old and 'updated' or 'added', id, {'capacity', new.capacity})
  served = make_free(id, resource(id))
  if served then
    audit('served', id, {'incident_id', served.incident_id, 'request', served.request})
  end
else
  audit('updated', id, {'capacity', new.capacity})
end
return cjson.encode({status = 'ok', resource = resource(id), served = served})
