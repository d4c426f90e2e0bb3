-- Shared helpers of the emergency pool scripts: alerts/pool.py prepends this file to each pool_*.lua script
-- (it is never run alone). Every pool script touches one region's hash slot only.
-- KEYS[1] the region's set of resource ids, KEYS[2] its audit stream,
-- KEYS[3 .. 2+n] the free sorted set of each of the n kinds, KEYS[3+n .. 2+2n] the waiting queue of each kind,
-- KEYS[3+2n ..] the script's own keys.
-- ARGV[1] context (JSON): res, hold, holds (key prefixes of the region), kinds, now (epoch seconds, a string),
--   audit_max, tie_limit; ARGV[2] the operation's arguments (JSON).
local CTX = cjson.decode(ARGV[1])
local OP = cjson.decode(ARGV[2])
local NKINDS = #CTX.kinds
local ALL, AUDIT = KEYS[1], KEYS[2]
local FREE, QUEUE = {}, {}
for i, kind in ipairs(CTX.kinds) do
  FREE[kind] = KEYS[2 + i]
  QUEUE[kind] = KEYS[2 + NKINDS + i]
end
local OWN = 3 + 2 * NKINDS
local NOW = CTX.now

local function resource(id)
  local flat = redis.call('HGETALL', CTX.res .. id)
  if #flat == 0 then
    return nil
  end
  local r = {}
  for i = 1, #flat, 2 do
    r[flat[i]] = flat[i + 1]
  end
  return r
end

local function audit(event, id, fields)
  local args = {'XADD', AUDIT, 'MAXLEN', '~', CTX.audit_max, '*', 'event', event, 'resource_id', id, 'at', NOW}
  for _, v in ipairs(fields or {}) do
    args[#args + 1] = tostring(v)
  end
  redis.call(unpack(args))
end

local function shortfall(r, need)
  local short = need - tonumber(r.capacity)
  if short > 0 then
    return short
  end
  return 0
end

-- Mark a free resource held by one incident's request; the hold key is what makes a retried pull idempotent.
local function hold(id, r, incident, request, need)
  local key = CTX.res .. id
  redis.call('ZREM', FREE[r.kind], id)
  redis.call('HSET', key, 'state', 'held', 'held_by', incident, 'request', request, 'held_since', NOW)
  redis.call('HDEL', key, 'dispatched_by', 'dispatched_at')
  redis.call('SET', CTX.hold .. incident .. ':' .. request, id)
  redis.call('SADD', CTX.holds .. incident, id)
  r.state, r.held_by, r.request, r.held_since = 'held', incident, request, NOW
  r.dispatched_by, r.dispatched_at = nil, nil
  audit('held', id, {'incident_id', incident, 'request', request, 'need', need})
  return r
end

-- Squared equirectangular distance in degrees: only used to rank partners, never shown.
local function distance2(r, loc)
  if not r.lat or not r.lon then
    return math.huge
  end
  local lat, lon = tonumber(r.lat), tonumber(r.lon)
  local dx = (lon - loc.lon) * math.cos(math.rad((lat + loc.lat) / 2))
  local dy = lat - loc.lat
  return dx * dx + dy * dy
end

-- The best free resource of a kind for `need` seats: the smallest that covers it, else (unless cover_only) the
-- largest; among several of that capacity the nearest to `loc` (ties broken by id, the sorted set's order).
local function pick(kind, need, loc, cover_only)
  local free = FREE[kind]
  local score
  local first = redis.call('ZRANGEBYSCORE', free, need, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    score = first[2]
  elseif cover_only then
    return nil
  else
    local top = redis.call('ZREVRANGE', free, 0, 0, 'WITHSCORES')
    if #top == 0 then
      return nil
    end
    score = top[2]
  end
  if loc == nil then
    local id = redis.call('ZRANGEBYSCORE', free, score, score, 'LIMIT', 0, 1)[1]
    return id, resource(id)
  end
  -- bounded so that a fleet of identical vehicles cannot make one pull slow
  local ties = redis.call('ZRANGEBYSCORE', free, score, score, 'LIMIT', 0, CTX.tie_limit)
  local best, best_r, best_d = nil, nil, math.huge
  for _, id in ipairs(ties) do
    local r = resource(id)
    local d = distance2(r, loc)
    if best == nil or d < best_d then
      best, best_r, best_d = id, r, d
    end
  end
  return best, best_r
end

-- The raw entry of (incident, request) in a kind's queue and its 0-based position, or nil.
local function queued(kind, incident, request)
  local entries = redis.call('LRANGE', QUEUE[kind], 0, -1)
  for i, raw in ipairs(entries) do
    local e = cjson.decode(raw)
    if e.incident_id == incident and e.request == request then
      return raw, i - 1
    end
  end
  return nil
end

-- A freed resource goes to the first waiter of its kind (FIFO); a waiter whose request got a resource some
-- other way meanwhile is dropped, so no request ever holds two.
local function serve(id, r)
  while true do
    local raw = redis.call('LPOP', QUEUE[r.kind])
    if not raw then
      return nil
    end
    local e = cjson.decode(raw)
    if redis.call('EXISTS', CTX.hold .. e.incident_id .. ':' .. e.request) == 0 then
      hold(id, r, e.incident_id, e.request, e.capacity)
      return {incident_id = e.incident_id, request = e.request, shortfall = shortfall(r, e.capacity),
              resource = r}
    end
  end
end

-- Return a resource to the pool: it serves the head of its queue, else joins the free set at its capacity.
local function make_free(id, r)
  local key = CTX.res .. id
  redis.call('HSET', key, 'state', 'free')
  redis.call('HDEL', key, 'held_by', 'request', 'held_since', 'dispatched_by', 'dispatched_at')
  r.state, r.held_by, r.request, r.held_since, r.dispatched_by, r.dispatched_at = 'free', nil, nil, nil, nil, nil
  local served = serve(id, r)
  if not served then
    redis.call('ZADD', FREE[r.kind], r.capacity, id)
  end
  return served
end
