-- Hands jobs back without counting an attempt (graceful shutdown): they are ready again at once
-- for another consumer, and the releasing holder is fenced off (epoch + 1).
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, unrecorded (0|1, see finish()), then pairs (id, epoch)
-- Returns one integer per pair: 1 released, 2 cancelled (it was cancelling), 0 rejected.
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local unrecorded = ARGV[3] == '1'
local out = {}
for i = 4, #ARGV, 2 do
  local id, epoch = ARGV[i], ARGV[i + 1]
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'ep', 'st', 'o')
  if v[1] == epoch and v[2] == 'a' then
    redis.call('ZREM', p .. 'active', id)
    redis.call('HINCRBY', jk, 'ep', 1)
    redis.call('HINCRBY', jk, 'at', -1)
    redis.call('HDEL', jk, 'ls', 'dl', 'wk')
    push_wait(p, id, (parse_opts(v[3])), now)
    wake(p)
    out[#out + 1] = 1
  elseif v[1] == epoch and v[2] == 'k' then
    queue_event(p, id, 'cancelled', now, ttl, nil, nil)
    finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
return out
