-- Pull one resource for an incident's request, in one region (after pool_lib.lua).
-- KEYS[OWN] the request's hold key. OP: incident_id, request, kind, capacity, location ({lat, lon} or absent),
-- mode: "check" (only report an existing hold), "cover" (take only a resource that covers capacity),
-- "any" (covering, else the largest), "pull" ("any", else wait in the kind's queue once).
-- Returns JSON {status: "held" | "queued" | "none", resource, shortfall, retry, position}.
local incident, request = OP.incident_id, OP.request
local held = redis.call('GET', KEYS[OWN])
if held then
  local r = resource(held)
  if r and r.held_by == incident then
    return cjson.encode({status = 'held', resource = r, shortfall = shortfall(r, OP.capacity), retry = true})
  end
  -- a hold whose resource moved on cannot be answered; forget it rather than hand out someone else's
  redis.call('DEL', KEYS[OWN])
end
if OP.mode == 'check' then
  return cjson.encode({status = 'none'})
end
local id, r = pick(OP.kind, OP.capacity, OP.location, OP.mode == 'cover')
if id then
  hold(id, r, incident, request, OP.capacity)
  local raw = queued(OP.kind, incident, request)
  if raw then
    redis.call('LREM', QUEUE[OP.kind], 1, raw)
  end
  return cjson.encode({status = 'held', resource = r, shortfall = shortfall(r, OP.capacity), retry = false})
end
if OP.mode ~= 'pull' then
  return cjson.encode({status = 'none'})
end
local raw, position = queued(OP.kind, incident, request)
if not raw then
  redis.call('RPUSH', QUEUE[OP.kind],
    cjson.encode({incident_id = incident, request = request, capacity = OP.capacity, at = NOW}))
  position = redis.call('LLEN', QUEUE[OP.kind]) - 1
  audit('queued', '', {'incident_id', incident, 'request', request, 'kind', OP.kind, 'need', OP.capacity})
end
return cjson.encode({status = 'queued', position = position})
