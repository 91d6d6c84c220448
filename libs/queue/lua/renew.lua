-- Renews the leases of jobs a consumer holds.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, lease_ms, then pairs (id, epoch)
-- Returns one integer per pair: 1 renewed, 2 renewed but the job is being cancelled (stop it),
-- 0 lost (the epoch is stale or the job is no longer active: stop it, write nothing).
local p = KEYS[1]
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local id, epoch = ARGV[i], ARGV[i + 1]
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'ep', 'st')
  if v[1] == epoch and (v[2] == 'a' or v[2] == 'k') then
    redis.call('HSET', jk, 'ls', now + lease)
    redis.call('ZADD', p .. 'active', 'XX', now + lease, id)
    out[#out + 1] = (v[2] == 'k') and 2 or 1
  else
    out[#out + 1] = 0
  end
end
return out
