-- Renews the leases of jobs a consumer holds.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, lease_ms, then pairs (id, epoch)
-- Returns one integer per pair: 1 renewed, 2 renewed but the job is being cancelled (stop it),
-- 0 lost (the epoch is stale or the job is no longer active: stop it, write nothing).
-- The lease (ls) moves to now + lease; the job's active score, the earlier of the lease expiry
-- and the deadline (dl), never moves past the deadline, so a holder that keeps renewing is still
-- timed out on time.
local p = KEYS[1]
local until_n = tonumber(ARGV[1]) + tonumber(ARGV[2])
local until_s = tostring(until_n)
local out = {}
for i = 3, #ARGV, 2 do
  local id, epoch = ARGV[i], ARGV[i + 1]
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'ep', 'st', 'dl')
  if v[1] == epoch and (v[2] == 'a' or v[2] == 'k') then
    redis.call('HSET', jk, 'ls', until_s)
    local score = until_s
    if v[3] and tonumber(v[3]) < until_n then score = v[3] end
    redis.call('ZADD', p .. 'active', 'XX', score, id)
    out[#out + 1] = (v[2] == 'k') and 2 or 1
  else
    out[#out + 1] = 0
  end
end
return out
