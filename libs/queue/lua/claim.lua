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
-- Numbers go to redis.call as strings formatted once (Redis would format each one per call).
local lease_until = tostring(now + lease)
local deadline_of = {}
local band_delta = {}
local held = {} -- score, id, ...: one ZADD to active for the batch
local popped = redis.call('ZPOPMIN', p .. 'wait', max_n)
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'd', 'o', 'rt', 'ep', 'at')
  local pr
  if v[1] and v[2] then
    local ma, bo, to
    pr, ma, bo, to = parse_opts(v[2])
    -- A first claim (the common case) writes constant strings: no number formatting per job.
    local epoch, attempt, ep_s, at_s = 1, 1, '1', '1'
    if v[4] then
      epoch = tonumber(v[4]) + 1
      ep_s = epoch
    end
    if v[5] then
      attempt = tonumber(v[5]) + 1
      at_s = attempt
    end
    -- One index for both clocks: the active score is the earlier of the lease expiry and the
    -- deadline, so housekeeping finds a lapsed lease and a passed deadline with one range read
    -- (it tells them apart from ls and dl in the hash).
    local score = lease_until
    if to > 0 then
      local dl = deadline_of[to]
      if not dl then
        dl = tostring(now + to)
        deadline_of[to] = dl
      end
      if to < lease then score = dl end
      redis.call('HSET', jk, 'ep', ep_s, 'at', at_s, 'st', 'a', 'wk', worker, 'ls', lease_until,
                 'dl', dl)
    else
      redis.call('HSET', jk, 'ep', ep_s, 'at', at_s, 'st', 'a', 'wk', worker, 'ls', lease_until)
    end
    held[#held + 1] = score
    held[#held + 1] = id
    redis.call('EXPIRE', jk, ARGV[5])
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = epoch
    jobs[#jobs + 1] = attempt
    jobs[#jobs + 1] = ma
    jobs[#jobs + 1] = tonumber(v[3]) or now
    jobs[#jobs + 1] = to
    jobs[#jobs + 1] = v[1]
  else
    -- The hash expired while the job waited (longer than the state TTL): drop the entry; its
    -- priority is in the score.
    pr = math.floor(tonumber(popped[i + 1]) / FIFO_SPAN) - 1000
  end
  band_delta[pr] = (band_delta[pr] or 0) - 1
end
if #held > 0 then bulk('ZADD', p .. 'active', held, 2) end
for pr, delta in pairs(band_delta) do redis.call('HINCRBY', p .. 'bands', pr, delta) end
if #popped > 0 and redis.call('ZCARD', p .. 'wait') > 0 then wake(p) end
local nxt = redis.call('ZRANGE', p .. 'delayed', 0, 0, 'WITHSCORES')
return {jobs, nxt[2] and tonumber(nxt[2]) or -1}
