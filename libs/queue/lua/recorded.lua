-- The end of these jobs is in the history now (written to PostgreSQL or accepted by its outbox):
-- takes them off <p>unrecorded and starts the completion TTL of their keys (finish() in
-- common.lua left them without one). Safe to repeat: a job no longer in the index is left as is
-- (its TTL was started by the first call).
-- KEYS[1]: queue prefix
-- ARGV: completion_ttl_s, then ids
-- Returns how many jobs it took off the index.
local p = KEYS[1]
local ttl = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', p .. 'unrecorded', id) == 1 then
    redis.call('EXPIRE', job_key(p, id), ttl)
    redis.call('EXPIRE', p .. 'o:' .. id, ttl)
    redis.call('EXPIRE', p .. 'ev:' .. id, ttl)
    n = n + 1
  end
end
return n
