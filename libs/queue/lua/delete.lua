-- Deletes a finished execution: its job hash, checkpoints and event log, and its entry in the
-- finished index. The idempotency key that may point to it is left to expire (state TTL): a
-- repeat of the original request still answers with this id instead of starting the work again.
-- KEYS[1]: queue prefix
-- ARGV: id
-- Returns 1.
-- Errors: NDX_NOT_FOUND (unknown or expired), NDX_FAILED_PRECONDITION (not finished: waiting,
-- delayed, running or cancelling).
local p = KEYS[1]
local id = ARGV[1]
local jk = job_key(p, id)
local st = redis.call('HGET', jk, 'st')
if not st then return redis.error_reply('NDX_NOT_FOUND execution ' .. id .. ' not found') end
local index = {c = 'completed', f = 'failed', t = 'timedout', x = 'cancelled'}
if not index[st] then
  local names = {w = 'waiting', d = 'delayed', a = 'running', k = 'being cancelled'}
  return redis.error_reply('NDX_FAILED_PRECONDITION execution ' .. id .. ' is ' ..
                           (names[st] or st) .. '; cancel it and wait until it has ended ' ..
                           'before deleting it')
end
redis.call('ZREM', p .. index[st], id)
redis.call('ZREM', p .. 'unrecorded', id)
redis.call('DEL', jk, p .. 'o:' .. id, p .. 'ev:' .. id)
return 1
