-- Release everything one incident holds in a region, and serve the waiting queues (after pool_lib.lua).
-- KEYS[OWN] the incident's set of held resource ids in the region. OP: incident_id.
-- Returns JSON {released: [{resource_id, kind, held_seconds}], served: [{incident_id, request, shortfall,
-- resource}]}. Releasing twice releases nothing the second time.
local incident = OP.incident_id
-- leave every queue first, so the incident is never served what it is giving back
for _, kind in ipairs(CTX.kinds) do
  for _, raw in ipairs(redis.call('LRANGE', QUEUE[kind], 0, -1)) do
    if cjson.decode(raw).incident_id == incident then
      redis.call('LREM', QUEUE[kind], 0, raw)
    end
  end
end
local released, served = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[OWN])) do
  local r = resource(id)
  if r and r.held_by == incident then
    redis.call('DEL', CTX.hold .. incident .. ':' .. r.request)
    local seconds = tonumber(NOW) - tonumber(r.held_since)
    audit('released', id, {'incident_id', incident, 'held_seconds', seconds})
    released[#released + 1] = {resource_id = id, kind = r.kind, held_seconds = seconds}
    local s = make_free(id, r)
    if s then
      audit('served', id, {'incident_id', s.incident_id, 'request', s.request})
      served[#served + 1] = s
    end
  end
end
redis.call('DEL', KEYS[OWN])
return cjson.encode({released = released, served = served})
