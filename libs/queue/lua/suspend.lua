-- Parks a running job until `resume_at` (a durable wait): it leaves active for the delayed set
-- without counting an attempt, frees its holder's slot, and any consumer resumes it when due from
-- its checkpoints. The holder is fenced off (epoch + 1).
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, resume_at_ms, now_ms, completion_ttl_s, unrecorded (0|1, see finish())
-- Returns 1 parked, 2 cancelled instead (a cancel arrived), 0 rejected (stale epoch).
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return 0 end
local now = tonumber(ARGV[4])
if v[2] == 'k' then
  queue_event(p, id, 'cancelled', now, tonumber(ARGV[5]), nil, nil)
  finish(p, id, 'x', 'cancelled', now, tonumber(ARGV[5]), nil, ARGV[6] == '1')
  return 2
end
redis.call('ZREM', p .. 'active', id)
redis.call('HINCRBY', jk, 'ep', 1)
redis.call('HINCRBY', jk, 'at', -1)
redis.call('HDEL', jk, 'ls', 'dl', 'wk')
redis.call('HSET', jk, 'st', 'd')
redis.call('ZADD', p .. 'delayed', tonumber(ARGV[3]), id)
return 1
