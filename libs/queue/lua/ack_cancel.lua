-- The worker holding a cancelling job has stopped it: record it as cancelled.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, id, epoch
-- Appends the `cancelled` event.
-- Returns 1 when recorded, 0 when rejected (stale epoch, or not cancelling).
local p = KEYS[1]
local v = redis.call('HMGET', job_key(p, ARGV[3]), 'ep', 'st')
if v[1] ~= ARGV[4] or v[2] ~= 'k' then return 0 end
queue_event(p, ARGV[3], 'cancelled', tonumber(ARGV[1]), tonumber(ARGV[2]), nil, nil)
finish(p, ARGV[3], 'x', 'cancelled', tonumber(ARGV[1]), tonumber(ARGV[2]), nil)
return 1
