-- The holder of a job begins running it: appends the execution's `started` event (once per
-- execution: retries and resumes do not repeat it) and returns the checkpoints saved so far.
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, workflow_id, workspace, event JSON (`started`), state_ttl_s
-- Returns {status, seq, checkpoints}: status 1 ok, 2 cancelling (stop), 0 lost (stale epoch);
-- seq of the started event (0 when not appended now); checkpoints as a flat [key, value, ...].
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {0, 0, {}} end
if v[2] == 'k' then return {2, 0, {}} end
local seq = 0
if redis.call('HSETNX', jk, 'sd', '1') == 1 then
  seq = append_event(p, id, ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
end
return {1, seq, redis.call('HGETALL', p .. 'o:' .. id)}
