-- Appends a node event (node-started, node-skipped, node-failed, retrying) for the holder of a
-- job, and optionally saves a checkpoint with it, in one step: the checkpoint of a node run and
-- its node-completed event are one script (DESIGN.md), so a crash never leaves one without the
-- other.
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, workflow_id, workspace, event JSON ("" = none), run key ("" = no
--   checkpoint), checkpoint JSON, current node id ("" = leave), state_ttl_s
-- Returns {status, seq}: status 1 ok, 2 cancelling (stop after this), 0 lost (nothing written).
-- A repeat of a call that saved a checkpoint (the caller retries when the reply is lost, e.g.
-- Redis was killed after running the script) finds that checkpoint with the same content and
-- writes nothing again (seq 0): its event is appended once. A node whose checkpoint exists never
-- runs again, so the same checkpoint written twice is always such a repeat.
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {0, 0} end
local ttl = tonumber(ARGV[9])
if ARGV[6] ~= '' then
  local ok = p .. 'o:' .. id
  if redis.call('HGET', ok, ARGV[6]) == ARGV[7] then return {(v[2] == 'k') and 2 or 1, 0} end
  redis.call('HSET', ok, ARGV[6], ARGV[7])
  if redis.call('TTL', ok) < 0 then redis.call('EXPIRE', ok, ttl) end
end
if ARGV[8] ~= '' then redis.call('HSET', jk, 'cn', ARGV[8]) end
local seq = 0
if ARGV[5] ~= '' then seq = append_event(p, id, ARGV[3], ARGV[4], ARGV[5], ttl) end
return {(v[2] == 'k') and 2 or 1, seq}
