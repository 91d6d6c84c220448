-- Manual retry: a new execution that resumes from the checkpoints of a finished one.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, state_ttl_s, old_id, new_id, idempotency key ("" = none)
-- Returns {new_id, duplicate (0|1)}.
-- Errors: NDX_NOT_FOUND (unknown or expired), NDX_FAILED_PRECONDITION (not failed, timed out or
-- cancelled: a waiting or running execution needs no retry, a completed one has nothing to redo).
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local old, new, idem = ARGV[3], ARGV[4], ARGV[5]
if idem ~= '' then
  local first = redis.call('GET', p .. 'idem:' .. idem)
  if first then return {first, 1} end
end
local v = redis.call('HMGET', job_key(p, old), 'st', 'd', 'o')
if not v[1] then
  return redis.error_reply('NDX_NOT_FOUND execution ' .. old .. ' not found (its state may ' ..
                           'have expired)')
end
if v[1] ~= 'f' and v[1] ~= 't' and v[1] ~= 'x' then
  local names = {w = 'waiting', d = 'delayed', a = 'running', k = 'being cancelled',
                 c = 'completed'}
  return redis.error_reply('NDX_FAILED_PRECONDITION execution ' .. old .. ' is ' ..
                           (names[v[1]] or v[1]) .. '; only a failed, timed-out or cancelled ' ..
                           'execution can be retried')
end
if idem ~= '' then redis.call('SET', p .. 'idem:' .. idem, new, 'EX', ttl) end
local pr, ma, bo, to, ct, ws = parse_opts(v[3])
local jk = job_key(p, new)
redis.call('HSET', jk, 'd', v[2], 'o', pr .. ' ' .. ma .. ' ' .. bo .. ' ' .. to .. ' ' .. now ..
           ' ' .. ws, 'ro', old)
redis.call('EXPIRE', jk, ttl)
-- Copy the checkpoints so that the new run skips every completed node.
local outputs = redis.call('HGETALL', p .. 'o:' .. old)
for i = 1, #outputs, 200 do
  local chunk = {}
  for j = i, math.min(i + 199, #outputs) do chunk[#chunk + 1] = outputs[j] end
  redis.call('HSET', p .. 'o:' .. new, unpack(chunk))
end
if #outputs > 0 then redis.call('EXPIRE', p .. 'o:' .. new, ttl) end
push_wait(p, new, pr, now)
wake(p)
return {new, 0}
