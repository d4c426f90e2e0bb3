-- Helpers shared by every alert_*.lua script: alerts/store.py prepends this file to each of them (it is never
-- run alone). Every alert script takes ARGV[1] = the {alerts} key prefix and touches only keys of that slot.
--
-- An alert is one hash: its scalar fields as they are (an absent tour_id or assignee is null), each detail
-- as a field "d:<name>" holding that value's JSON, and "notes" a JSON array. Details stay raw JSON so that
-- Lua never decodes and re-encodes them (cjson would turn an empty list into {} and round floats).
local PREFIX = ARGV[1]
local RANK = {low = 1, medium = 2, high = 3, critical = 4}
local STEPS = {'low', 'medium', 'high', 'critical'}

local function alert_key(id) return PREFIX .. ':alert:' .. id end
local function audit_key(id) return PREFIX .. ':audit:' .. id end
local function dedup_key(name) return PREFIX .. ':dedup:' .. name end
local function active_key(region) return PREFIX .. ':active:' .. region end

local function load(id)
  local flat = redis.call('HGETALL', alert_key(id))
  if #flat == 0 then
    return nil
  end
  local h = {}
  for i = 1, #flat, 2 do
    h[flat[i]] = flat[i + 1]
  end
  return h
end

-- The open or acknowledged alert a dedup key names: its id and record, or nil when there is none.
local function active(dedup)
  local id = redis.call('GET', dedup)
  local h = id and load(id)
  if h and (h.status == 'open' or h.status == 'acknowledged') then
    return id, h
  end
  return nil
end

-- Append the details given as ARGV name, JSON pairs from `first` on to an HSET argument list.
local function add_details(set, first)
  for i = first, #ARGV, 2 do
    set[#set + 1] = 'd:' .. ARGV[i]
    set[#set + 1] = ARGV[i + 1]
  end
end

local function json_or_null(value)
  if value == nil then
    return 'null'
  end
  return cjson.encode(value)
end

local function render(h)
  local details = {}
  for field, value in pairs(h) do
    if string.sub(field, 1, 2) == 'd:' then
      details[#details + 1] = cjson.encode(string.sub(field, 3)) .. ':' .. value
    end
  end
  table.sort(details)
  return '{"alert_id":' .. cjson.encode(h.alert_id)
    .. ',"kind":' .. cjson.encode(h.kind)
    .. ',"severity":' .. cjson.encode(h.severity)
    .. ',"status":' .. cjson.encode(h.status)
    .. ',"tour_id":' .. json_or_null(h.tour_id)
    .. ',"region":' .. cjson.encode(h.region)
    .. ',"summary":' .. cjson.encode(h.summary)
    .. ',"details":{' .. table.concat(details, ',') .. '}'
    .. ',"count":' .. h.count
    .. ',"escalation_level":' .. h.escalation_level
    .. ',"assignee":' .. json_or_null(h.assignee)
    .. ',"opened_at":' .. cjson.encode(h.opened_at)
    .. ',"updated_at":' .. cjson.encode(h.updated_at)
    .. ',"acked_at":' .. json_or_null(h.acked_at)
    .. ',"resolved_at":' .. json_or_null(h.resolved_at)
    .. ',"dedup_key":' .. cjson.encode(h.dedup_key)
    .. ',"notes":' .. (h.notes or '[]')
    .. ',"notified":' .. (h.notified or '{}') .. '}' -- who was paged, the latest result each (alert_page_done)
end

-- Append the alert as it is now to the changes stream; returns the change's seq (its stream id) and the alert's
-- JSON, rendered once for the stream and the caller's marker alike.
local function publish(changes, h, maxlen)
  local json = render(h)
  return redis.call('XADD', changes, 'MAXLEN', '~', maxlen, '*', 'a', json), json
end

local function audit(id, entry)
  redis.call('RPUSH', audit_key(id), cjson.encode(entry))
  redis.call('LTRIM', audit_key(id), -1000, -1)
end

local function add_note(id, h, at, by, note)
  local entry = cjson.encode({at = at, by = by, note = note})
  if h.notes then
    h.notes = string.sub(h.notes, 1, -2) .. ',' .. entry .. ']'
  else
    h.notes = '[' .. entry .. ']'
  end
  redis.call('HSET', alert_key(id), 'notes', h.notes)
end

-- Leave the open set: the condition may open a new alert from now on; the record stays for the retention.
local function close(id, h, retention)
  if redis.call('GET', dedup_key(h.dedup_key)) == id then
    redis.call('DEL', dedup_key(h.dedup_key))
  end
  redis.call('SREM', active_key(h.region), id)
  redis.call('EXPIRE', alert_key(id), retention)
  redis.call('EXPIRE', audit_key(id), retention)
end

-- An applied marker: "<opened 0|1>|<seq>|<alert json>", or "" when the step changed nothing.
local function mark(marker, ttl, opened, seq, json)
  local value = ''
  if seq then
    value = opened .. '|' .. seq .. '|' .. json
  end
  redis.call('SET', marker, value, 'EX', ttl)
  return value
end

-- A watcher effect's applied marker: "<opened 0|1>|<seq>|<alert id>", or "" when the step changed nothing. It
-- lives keys.EFFECT_MARKER_TTL (7 days) and the watcher writes one per alert change, so it names the alert rather than keep a copy
-- of it; the caller gets "<opened>|<seq>|<alert JSON>" now, and a replay the alert as it is then.
local function mark_applied(marker, ttl, opened, seq, id, json)
  if not seq then
    redis.call('SET', marker, '', 'EX', ttl)
    return ''
  end
  redis.call('SET', marker, opened .. '|' .. seq .. '|' .. id, 'EX', ttl)
  return opened .. '|' .. seq .. '|' .. json
end

-- The answer to a replayed watcher effect: its marker with the alert as it is now ("null" once it expired).
local function replayed(done)
  local opened, seq, id = string.match(done, '^([01])|([^|]*)|(A%d+)$')
  if not id then
    return {'replay', done} -- changed nothing, or a marker of an older version that kept the alert's JSON
  end
  local h = load(id)
  return {'replay', opened .. '|' .. seq .. '|' .. (h and render(h) or 'null')}
end
