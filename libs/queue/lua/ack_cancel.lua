-- The worker holding a cancelling job has stopped it: record it as cancelled.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, id, epoch, unrecorded (0|1, see finish()), call token ("" =
--   none; a repeat with the same token returns 1 again, see node_event.lua)
-- Appends the `cancelled` event.
-- Returns 1 when recorded, 0 when rejected (stale epoch, or not cancelling).
local p = KEYS[1]
local token = ARGV[6] or ''
local v = redis.call('HMGET', job_key(p, ARGV[3]), 'ep', 'st', 'tk')
if token ~= '' and v[3] == token then return 1 end
if v[1] ~= ARGV[4] or v[2] ~= 'k' then return 0 end
queue_event(p, ARGV[3], 'cancelled', tonumber(ARGV[1]), tonumber(ARGV[2]), nil, nil)
finish(p, ARGV[3], 'x', 'cancelled', tonumber(ARGV[1]), tonumber(ARGV[2]), nil, ARGV[5] == '1')
if token ~= '' then redis.call('HSET', job_key(p, ARGV[3]), 'tk', token, 'tr', 1) end
return 1
