-- Reports a node run for the holder of a job: appends its events (node-started, node-completed,
-- node-skipped, node-failed, retrying; the worker sends a node's node-started with the event that
-- ends or interrupts the run, unless the run takes long) and optionally saves its checkpoint, in
-- one step: the checkpoint of a node run and its node-completed event are one script
-- (DESIGN.md), so a crash never leaves one without the other.
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, workflow_id, workspace, state_ttl_s, run key ("" = no checkpoint),
--   checkpoint JSON, then the events' JSON (0 or more), appended in order
-- Returns {status, seq}: status 1 ok, 2 cancelling (stop after this), 0 lost (nothing written);
-- seq of the last event appended (0 when none).
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {0, 0} end
local ttl = tonumber(ARGV[5])
if ARGV[6] ~= '' then
  local ok = p .. 'o:' .. id
  redis.call('HSET', ok, ARGV[6], ARGV[7])
  if redis.call('TTL', ok) < 0 then redis.call('EXPIRE', ok, ttl) end
end
local seq = 0
for i = 8, #ARGV do seq = append_event(p, id, ARGV[3], ARGV[4], ARGV[i], ttl) end
return {(v[2] == 'k') and 2 or 1, seq}
