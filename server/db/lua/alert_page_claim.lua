-- Claim due pages for one attempt each: a claimed page is due again `lease` seconds later, so one whose sender
-- died is sent again (with the same Idempotency-Key) and never lost. A page its alert no longer wants (a rota page
-- once acknowledged, any page once resolved or gone) is dropped here, unsent.
-- KEYS[1] the due set
-- ARGV[1] prefix, [2] now (epoch), [3] lease (seconds), [4] at most this many
-- Returns a flat list: job id, attempt, alert JSON, job JSON (its hash), for each page claimed.
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local job_key = PREFIX .. ':page:' .. id
  local alert_id, reason = unpack(redis.call('HMGET', job_key, 'alert_id', 'reason'))
  local h = alert_id and load(alert_id)
  local wanted = h and (h.status == 'open' or (reason == 'assign' and h.status == 'acknowledged'))
  if not wanted then
    redis.call('ZREM', KEYS[1], id)
    if alert_id then
      redis.call('HSET', job_key, 'state', 'cancelled')
    end
  else
    redis.call('ZADD', KEYS[1], now + lease, id)
    local attempt = redis.call('HINCRBY', job_key, 'attempts', 1)
    redis.call('HSET', job_key, 'state', 'sending', 'claimed_at', ARGV[2])
    out[#out + 1] = id
    out[#out + 1] = attempt
    out[#out + 1] = render(h)
    local flat, job = redis.call('HGETALL', job_key), {}
    for i = 1, #flat, 2 do
      job[flat[i]] = flat[i + 1]
    end
    out[#out + 1] = cjson.encode(job)
  end
end
return out
