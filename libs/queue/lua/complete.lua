-- Records the successful end of jobs.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, keep_count, then groups of 5 (id, epoch, workflow_id,
--   workspace_id, event JSON: the `completed` event to append with the state change, "" for
--   none)
-- Returns one integer per pair: 1 completed, 2 cancelled instead (a cancel arrived while it ran:
-- cancelled wins, a success never overwrites it), 0 rejected (stale epoch or not active).
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local out = {}
local any = false
for i = 4, #ARGV, 5 do
  local id, epoch, wf, ws, ev = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local v = redis.call('HMGET', job_key(p, id), 'ep', 'st')
  if v[1] == epoch and v[2] == 'a' then
    if ev ~= '' then append_event(p, id, wf, ws, ev, ttl) end
    -- ARGV's strings, not numbers: Redis would format a number for each command that gets one.
    finish(p, id, 'c', 'completed', ARGV[1], ARGV[2], nil)
    out[#out + 1] = 1
    any = true
  elseif v[1] == epoch and v[2] == 'k' then
    if ev ~= '' then queue_event(p, id, 'cancelled', now, ttl, nil, nil) end
    finish(p, id, 'x', 'cancelled', now, ttl, nil)
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
if any then trim(p, 'completed', now, ttl, keep) end
return out
