-- Records the successful end of jobs.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, keep_count, unrecorded (0|1: the end still has to be written to
--   the history; see finish()), then groups of 6 (id, epoch, workflow_id, workspace_id, event
--   JSON: the `completed` event to append with the state change, "" for none; call token, "" for
--   none)
-- Returns one integer per pair: 1 completed, 2 cancelled instead (a cancel arrived while it ran:
-- cancelled wins, a success never overwrites it), 0 rejected (stale epoch or not active).
-- A call token (the holder's "<epoch>:<n>", see node_event.lua) makes a repeat of the same call
-- (its reply was lost) return the first call's outcome instead of "rejected".
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local unrecorded = ARGV[4] == '1'
local out = {}
local done = {}
for i = 5, #ARGV, 6 do
  local id, epoch, wf, ws, ev = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local token = ARGV[i + 5]
  local v = redis.call('HMGET', job_key(p, id), 'ep', 'st', 'tk', 'tr')
  if token ~= '' and v[3] == token then
    out[#out + 1] = tonumber(v[4])
  elseif v[1] == epoch and v[2] == 'a' then
    if ev ~= '' then append_event(p, id, wf, ws, ev, ttl) end
    -- ARGV's strings, not numbers: Redis would format a number for each command that gets one.
    finish(p, id, 'c', 'completed', ARGV[1], ARGV[2], nil, unrecorded, done)
    if token ~= '' then redis.call('HSET', job_key(p, id), 'tk', token, 'tr', 1) end
    out[#out + 1] = 1
  elseif v[1] == epoch and v[2] == 'k' then
    if ev ~= '' then queue_event(p, id, 'cancelled', now, ttl, nil, nil) end
    finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
    if token ~= '' then redis.call('HSET', job_key(p, id), 'tk', token, 'tr', 2) end
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
if #done > 0 then
  -- The completed jobs leave active and enter completed with one command each for the batch.
  bulk('ZREM', p .. 'active', done, 1)
  local scored = {}
  for i, id in ipairs(done) do
    scored[2 * i - 1] = ARGV[1]
    scored[2 * i] = id
  end
  bulk('ZADD', p .. 'completed', scored, 2)
  trim(p, 'completed', now, ttl, keep)
end
return out
