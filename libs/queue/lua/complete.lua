-- Records the successful end of jobs.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, keep_count, then pairs (id, epoch)
-- Returns one integer per pair: 1 completed, 2 cancelled instead (a cancel arrived while it ran:
-- cancelled wins, a success never overwrites it), 0 rejected (stale epoch or not active).
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local out = {}
local any = false
for i = 4, #ARGV, 2 do
  local id, epoch = ARGV[i], ARGV[i + 1]
  local v = redis.call('HMGET', job_key(p, id), 'ep', 'st')
  if v[1] == epoch and v[2] == 'a' then
    finish(p, id, 'c', 'completed', now, ttl, nil)
    out[#out + 1] = 1
    any = true
  elseif v[1] == epoch and v[2] == 'k' then
    finish(p, id, 'x', 'cancelled', now, ttl, nil)
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
if any then trim(p, 'completed', now, ttl, keep) end
return out
