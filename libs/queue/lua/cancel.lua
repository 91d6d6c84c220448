-- Cancels a job in any state.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, id, unrecorded (0|1, see finish())
-- Appends the `cancelled` event when the execution ends here.
-- Returns the state after the call: 'x' cancelled (it was waiting or delayed, or was cancelled
-- already), 'k' cancelling (it is running: its worker is told through the cancel channel and by
-- its next lease renewal, and records 'x' when it has stopped).
-- Errors: NDX_NOT_FOUND (unknown or expired), NDX_FAILED_PRECONDITION (already completed, failed
-- or timed out).
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local id = ARGV[3]
local unrecorded = ARGV[4] == '1'
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'st', 'o')
local st = v[1]
if not st then return redis.error_reply('NDX_NOT_FOUND execution ' .. id .. ' not found') end
if st == 'w' then
  redis.call('ZREM', p .. 'wait', id)
  redis.call('HINCRBY', p .. 'bands', (parse_opts(v[2])), -1)
  queue_event(p, id, 'cancelled', now, ttl, nil, nil)
  finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
  return 'x'
elseif st == 'd' then
  redis.call('ZREM', p .. 'delayed', id)
  queue_event(p, id, 'cancelled', now, ttl, nil, nil)
  finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
  return 'x'
elseif st == 'a' then
  redis.call('HSET', jk, 'st', 'k')
  redis.call('PUBLISH', p .. 'cancel', id)
  return 'k'
elseif st == 'k' or st == 'x' then
  return st
end
local names = {c = 'completed', f = 'failed', t = 'timed out'}
return redis.error_reply('NDX_FAILED_PRECONDITION execution ' .. id .. ' has already ' ..
                         (names[st] or st) .. '; only a waiting, delayed or running execution ' ..
                         'can be cancelled')
