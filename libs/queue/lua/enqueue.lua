-- Enqueues n jobs in one call.
-- KEYS[1]: queue prefix "ndx:{Q}:"
-- ARGV: now_ms, max_depth (0 = unlimited), state_ttl_s, n, then n groups of 6:
--   id, idempotency key ("" = none), options ("pr ma bo to ct ws"), run_at_ms (0 = now),
--   priority, payload
-- Returns a flat array: for each job, its execution id and 1 if it was a duplicate (the id is then
-- that of the first request), else 0.
-- Errors: NDX_RESOURCE_EXHAUSTED when waiting + delayed + n would exceed max_depth.
local p = KEYS[1]
local now = tonumber(ARGV[1])
local max_depth = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
if max_depth > 0 then
  local depth = redis.call('ZCARD', p .. 'wait') + redis.call('ZCARD', p .. 'delayed')
  if depth + n > max_depth then
    return redis.error_reply('NDX_RESOURCE_EXHAUSTED queue is full: ' .. depth ..
                             ' executions waiting, the limit is ' .. max_depth)
  end
end
local out = {}
local ready = false
for i = 0, n - 1 do
  local b = 5 + i * 6
  local id, idem, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local run_at, priority, payload = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5]
  local first = nil
  if idem ~= '' then
    local ik = p .. 'idem:' .. idem
    first = redis.call('GET', ik)
    if not first then redis.call('SET', ik, id, 'EX', ttl) end
  end
  if first then
    out[#out + 1] = first
    out[#out + 1] = 1
  else
    local jk = job_key(p, id)
    redis.call('HSET', jk, 'd', payload, 'o', opts)
    redis.call('EXPIRE', jk, ttl)
    if run_at > now then
      redis.call('HSET', jk, 'st', 'd')
      redis.call('ZADD', p .. 'delayed', run_at, id)
    else
      push_wait(p, id, priority, now)
      ready = true
    end
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if ready then wake(p) end
return out
