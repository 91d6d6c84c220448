-- Claims up to max_n ready jobs for one consumer, after promoting due delayed jobs.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, worker_id, lease_ms, max_n, state_ttl_s
-- Returns {jobs, next_due_ms}: jobs is a flat array of groups of 7
--   (id, epoch, attempt, max_attempts, ready_since_ms, timeout_ms, payload); next_due_ms is the due time of
--   the earliest delayed job, or -1.
local p = KEYS[1]
local now = tonumber(ARGV[1])
local worker = ARGV[2]
local lease = tonumber(ARGV[3])
local max_n = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
promote_due(p, now, 1000)
local jobs = {}
local popped = redis.call('ZPOPMIN', p .. 'wait', max_n)
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'd', 'o', 'rt')
  if v[1] and v[2] then
    local pr, ma, bo, to = parse_opts(v[2])
    redis.call('HINCRBY', p .. 'bands', pr, -1)
    local epoch = redis.call('HINCRBY', jk, 'ep', 1)
    local attempt = redis.call('HINCRBY', jk, 'at', 1)
    redis.call('HSET', jk, 'st', 'a', 'wk', worker, 'ls', now + lease)
    redis.call('ZADD', p .. 'active', now + lease, id)
    if to > 0 then
      redis.call('HSET', jk, 'dl', now + to)
      redis.call('ZADD', p .. 'deadlines', now + to, id)
    end
    redis.call('EXPIRE', jk, ttl)
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = epoch
    jobs[#jobs + 1] = attempt
    jobs[#jobs + 1] = ma
    jobs[#jobs + 1] = tonumber(v[3]) or now
    jobs[#jobs + 1] = to
    jobs[#jobs + 1] = v[1]
  end
  -- A job whose hash expired while it waited (longer than the state TTL) is dropped.
end
if #popped > 0 and redis.call('ZCARD', p .. 'wait') > 0 then wake(p) end
local nxt = redis.call('ZRANGE', p .. 'delayed', 0, 0, 'WITHSCORES')
return {jobs, nxt[2] and tonumber(nxt[2]) or -1}
