-- Enqueues n jobs in one call.
-- KEYS[1]: queue prefix "ndx:{Q}:"
-- ARGV: now_ms, max_depth (0 = unlimited), state_ttl_s, n, each (1 = jobs are independent), then
--   n groups of 6: id, idempotency key ("" = none), options ("pr ma bo to ct ws"), run_at_ms
--   (0 = now), priority, payload
-- Returns a flat array: for each job, two elements: its execution id and 0; or the id of the first
-- request and 1 when the idempotency key was seen; or (each = 1 only) the queue depth and 2 when
-- the job would take the queue past max_depth (nothing of that job is written).
-- Errors (each = 0): NDX_RESOURCE_EXHAUSTED when waiting + delayed + n would exceed max_depth.
--
-- Redis 7.0 formats every Lua number passed to redis.call with "%.17g" (a visible share of its
-- CPU): the strings of ARGV are passed as they are, and the per-job index writes are grouped (one
-- ZADD per call, one HINCRBY per priority, one INCRBY for the FIFO sequence).
local p = KEYS[1]
local now_s, ttl_s = ARGV[1], ARGV[3]
local now = tonumber(now_s)
local max_depth = tonumber(ARGV[2])
local n = tonumber(ARGV[4])
local each = ARGV[5] == '1'
local depth = 0
if max_depth > 0 then
  depth = redis.call('ZCARD', p .. 'wait') + redis.call('ZCARD', p .. 'delayed')
  if not each and depth + n > max_depth then
    return redis.error_reply('NDX_RESOURCE_EXHAUSTED queue is full: ' .. depth ..
                             ' executions waiting, the limit is ' .. max_depth)
  end
end
-- One sequence block for the call: numbers that go unused (duplicates, delayed jobs) only leave
-- gaps, and FIFO order within a priority is kept.
local seq = nil
local out = {}
local wait_args = {}
local bands = {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  local id, idem, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local run_at_s, priority_s = ARGV[b + 3], ARGV[b + 4]
  local first = nil
  local ik = nil
  if idem ~= '' then
    ik = p .. 'idem:' .. idem
    first = redis.call('GET', ik)
  end
  if first then
    out[#out + 1] = first
    out[#out + 1] = 1
  elseif each and max_depth > 0 and depth >= max_depth then
    out[#out + 1] = tostring(depth)
    out[#out + 1] = 2
  else
    depth = depth + 1
    if ik then redis.call('SET', ik, id, 'EX', ttl_s) end
    local jk = job_key(p, id)
    if tonumber(run_at_s) > now then
      redis.call('HSET', jk, 'd', ARGV[b + 5], 'o', opts, 'st', 'd')
      redis.call('ZADD', p .. 'delayed', run_at_s, id)
    else
      redis.call('HSET', jk, 'd', ARGV[b + 5], 'o', opts, 'st', 'w', 'rt', now_s)
      if not seq then seq = redis.call('INCRBY', p .. 'seq', n) - n end
      seq = seq + 1
      wait_args[#wait_args + 1] = (tonumber(priority_s) + 1000) * FIFO_SPAN + seq
      wait_args[#wait_args + 1] = id
      bands[priority_s] = (bands[priority_s] or 0) + 1
    end
    redis.call('EXPIRE', jk, ttl_s)
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if #wait_args > 0 then
  -- unpack() is bounded by Lua's C stack (LUAI_MAXCSTACK 8000): 1,000 jobs per ZADD.
  for i = 1, #wait_args, 2000 do
    redis.call('ZADD', p .. 'wait', unpack(wait_args, i, math.min(i + 1999, #wait_args)))
  end
  for pr, count in pairs(bands) do redis.call('HINCRBY', p .. 'bands', pr, count) end
  wake(p)
end
return out
