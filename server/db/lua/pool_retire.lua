-- Retire one resource of a region, only while it is free (after pool_lib.lua).
-- KEYS[OWN] the resource's hash. OP: resource_id.
-- Returns JSON {status: "ok" | "not_found" | "conflict", resource}.
local id = OP.resource_id
local r = resource(id)
if not r then
  return cjson.encode({status = 'not_found'})
end
if r.state ~= 'free' then
  return cjson.encode({status = 'conflict', resource = r})
end
redis.call('ZREM', FREE[r.kind], id)
redis.call('SREM', ALL, id)
redis.call('DEL', KEYS[OWN])
audit('retired', id, {})
return cjson.encode({status = 'ok', resource = r})
