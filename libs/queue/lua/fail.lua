-- Records a failed attempt of a job: retried with exponential backoff when the error is transient
-- and attempts remain, else failed for good.
-- KEYS[1]: queue prefix
-- ARGV: now_ms, completion_ttl_s, keep_count, id, epoch, error_json, transient (0|1),
--       jitter (0..1: the fraction of the delay to subtract at random, already drawn by the
--       caller, so that tests can fix it), workflow_id, events (0|1: append the `retrying` or
--       `failed` / `cancelled` event with the state change), timed_out (0|1: the holder saw the
--       job's deadline pass: end it as timed out, never retried), unrecorded (0|1: the end
--       still has to be written to the history; see finish()), call token ("" = none)
-- Returns {outcome, delay_ms, attempt}: outcome 1 retry scheduled (after delay_ms), 0 failed,
-- 2 cancelled instead (a cancel arrived while it ran), 3 timed out, -1 rejected (stale epoch or
-- not active).
-- A repeat of a call with the same token (the holder's "<epoch>:<n>", see node_event.lua; its
-- reply was lost) appends nothing and returns the first call's reply.
local p = KEYS[1]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local id, epoch, err = ARGV[4], ARGV[5], ARGV[6]
local transient = ARGV[7] == '1'
local jitter = tonumber(ARGV[8])
local wf = ARGV[9]
local ws = ''
local events = ARGV[10] == '1'
local timed_out = ARGV[11] == '1'
local unrecorded = ARGV[12] == '1'
local token = ARGV[13] or ''
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st', 'o', 'at', 'tk', 'tr')
-- Before the epoch check: a timeout bumped the epoch in the first call.
if token ~= '' and v[5] == token then
  local o, d, a = string.match(v[6] or '', '^(%S+) (%S+) (%S+)$')
  return {tonumber(o), tonumber(d), tonumber(a)}
end
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {-1, 0, 0} end
local attempt = tonumber(v[4]) or 0
-- The reply, remembered with the call's token.
local function reply(outcome, delay)
  if token ~= '' then
    redis.call('HSET', jk, 'tk', token, 'tr', outcome .. ' ' .. delay .. ' ' .. attempt)
  end
  return {outcome, delay, attempt}
end
if v[2] == 'k' then
  if events then queue_event(p, id, 'cancelled', now, ttl, nil, nil) end
  finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
  return reply(2, 0)
end
local pr, ma, bo, _, _, job_ws = parse_opts(v[3])
ws = job_ws or ''
if timed_out then
  local e = decode_error(err)
  if events then
    append_event(p, id, wf, ws, cjson.encode({type = 'failed', executionId = id,
      workflowId = wf, timestamp = iso_time(now), error = e, executionState = 'TIMED_OUT'}), ttl)
  end
  redis.call('HINCRBY', jk, 'ep', 1)
  finish(p, id, 't', 'timedout', now, ttl, err, unrecorded)
  trim(p, 'timedout', now, ttl, keep)
  return reply(3, 0)
end
if transient and attempt < ma then
  local delay = math.floor(bo * (2 ^ (attempt - 1)) * (1 - jitter))
  redis.call('ZREM', p .. 'active', id)
  redis.call('HSET', jk, 'st', 'd', 'err', err)
  redis.call('HDEL', jk, 'ls', 'dl')
  if events then
    local e = decode_error(err)
    append_event(p, id, wf, ws, cjson.encode({type = 'retrying', executionId = id,
      workflowId = wf, timestamp = iso_time(now), error = e,
      data = {attempt = attempt, maxAttempts = ma, delay = delay,
              nextAttemptAt = iso_time(now + delay)}}), ttl)
  end
  if delay > 0 then
    redis.call('ZADD', p .. 'delayed', now + delay, id)
  else
    redis.call('ZADD', p .. 'delayed', now, id)
    promote_due(p, now, 1)
  end
  return reply(1, delay)
end
if events then
  append_event(p, id, wf, ws, cjson.encode({type = 'failed', executionId = id, workflowId = wf,
    timestamp = iso_time(now), error = decode_error(err), data = {attempts = attempt}}), ttl)
end
finish(p, id, 'f', 'failed', now, ttl, err, unrecorded)
trim(p, 'failed', now, ttl, keep)
return reply(0, 0)
