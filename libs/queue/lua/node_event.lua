-- Reports a node run for the holder of a job: appends its events (node-started, node-completed,
-- node-skipped, node-failed, retrying; the worker sends a node's node-started with the event that
-- ends or interrupts the run, unless the run takes long) and optionally saves its checkpoint, in
-- one step: the checkpoint of a node run and its node-completed event are one script
-- (DESIGN.md), so a crash never leaves one without the other.
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, workflow_id, workspace, state_ttl_s, run key ("" = no checkpoint),
--   checkpoint JSON, "1" when the checkpoints' hash is known to have its TTL (an earlier call of
--   this holder set it; "0" checks), then the events' JSON (0 or more), appended in order
-- Returns {status, seq}: status 1 ok, 2 cancelling (stop after this), 0 lost (nothing written);
-- seq of the last event appended (0 when none).
-- A repeat of a call that saved a checkpoint (the caller retries when the reply is lost, e.g.
-- Redis was killed after running the script) finds that checkpoint with the same content and
-- writes nothing again (seq 0): its events are appended once. A node whose checkpoint exists never
-- runs again, so the same checkpoint written twice is always such a repeat.
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {0, 0} end
local ttl = tonumber(ARGV[5])
if ARGV[6] ~= '' then
  local ok = p .. 'o:' .. id
  if redis.call('HGET', ok, ARGV[6]) == ARGV[7] then return {(v[2] == 'k') and 2 or 1, 0} end
  redis.call('HSET', ok, ARGV[6], ARGV[7])
  if ARGV[8] ~= '1' and redis.call('TTL', ok) < 0 then redis.call('EXPIRE', ok, ttl) end
end
local n = #ARGV - 8
local seq = 0
if n > 0 then
  -- One RPUSH for all the events (append_event() in common.lua, for several).
  local ek = p .. 'ev:' .. id
  seq = redis.call('RPUSH', ek, unpack(ARGV, 9))
  if seq == n then redis.call('EXPIRE', ek, ttl) end
  for i = 1, n do
    redis.call('XADD', p .. 'feed', 'MAXLEN', '~', FEED_MAXLEN, '*', 'e', id, 's', seq - n + i,
               'w', ARGV[3], 'ws', ARGV[4], 'j', ARGV[8 + i])
  end
end
return {(v[2] == 'k') and 2 or 1, seq}
