-- Housekeeping, run by every consumer and queue process; the hk lease lets one of them do it per
-- interval. Sweeps the wait and delayed indexes of jobs whose state expired (the heads of the
-- wait bands first), promotes due delayed jobs, recovers jobs whose lease lapsed (back to wait,
-- or failed past the stall limit; cancelling ones become cancelled), and ends jobs past their
-- deadline as timed out even when the worker holding them never answers (its epoch is bumped, so
-- none of its writes are accepted any more, and it is told through the cancel channel).
-- KEYS[1]: queue prefix
-- ARGV: now_ms, owner, interval_ms, max_stalls, completion_ttl_s, keep_count, batch, force (0|1),
--       unrecorded (0|1: the ends it makes still have to be written to the history; see finish()),
--       follow_up_ms (how soon the next run may start when this one stopped at its budget)
-- Returns {ran (0|1), promoted, requeued, stall_failed, timed_out, cancelled, stall_failed_ids,
--          timed_out_ids, cancelled_ids, more (0|1: expired wait entries are left at a head; the
--          lease is shortened to follow_up_ms so that the next run comes soon)}
-- A run looks at no more than about `batch` entries of each kind, so it blocks Redis for a few
-- milliseconds at most; a backlog (20,000 jobs that expired together) goes in short runs
-- follow_up_ms apart instead of in one long one.
local p = KEYS[1]
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[3])
local max_stalls = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local batch = tonumber(ARGV[7])
local unrecorded = ARGV[9] == '1'
if ARGV[8] ~= '1' then
  if not redis.call('SET', p .. 'hk', ARGV[2], 'NX', 'PX', interval) then
    return {0, 0, 0, 0, 0, 0, {}, {}, {}, 0}
  end
end
local promoted = promote_due(p, now, batch)
local requeued, stall_failed, timed_out, cancelled = 0, 0, 0, 0
local failed_ids, timed_out_ids, cancelled_ids = {}, {}, {}
-- Entries of the `deadlines` index that an older version's claims wrote (before deadlines were
-- folded into active scores): each due one moves its deadline into the job's active score (LT:
-- only ever earlier; XX: only while the job is still active) and leaves the old index, so that
-- the loop below times it out and the old index empties itself after an upgrade.
local legacy = redis.call('ZRANGEBYSCORE', p .. 'deadlines', '-inf', ARGV[1], 'WITHSCORES',
                          'LIMIT', 0, batch)
for i = 1, #legacy, 2 do
  redis.call('ZADD', p .. 'active', 'XX', 'LT', legacy[i + 1], legacy[i])
  redis.call('ZREM', p .. 'deadlines', legacy[i])
end
-- An active score is the earlier of the lease expiry (ls) and the deadline (dl): every job due
-- here has a lapsed lease, a passed deadline, or both. A lapsed lease is handled first (stalled:
-- back to wait, or failed past the stall limit; a cancelling job becomes cancelled), as when the
-- two had indexes of their own; a passed deadline with a live holder times the job out.
local expired = redis.call('ZRANGEBYSCORE', p .. 'active', '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, id in ipairs(expired) do
  local jk = job_key(p, id)
  local v = redis.call('HMGET', jk, 'st', 'o', 'wk', 'ls', 'dl')
  local held = v[1] == 'a' or v[1] == 'k'
  local ls, dl = tonumber(v[4]), tonumber(v[5])
  local lapsed = not ls or ls <= now
  if not held then
    -- the hash expired (nothing to recover), or a stray entry of a job no longer held
    redis.call('ZREM', p .. 'active', id)
  elseif lapsed and v[1] == 'k' then
    queue_event(p, id, 'cancelled', now, ttl, nil, nil)
    finish(p, id, 'x', 'cancelled', now, ttl, nil, unrecorded)
    cancelled = cancelled + 1
    cancelled_ids[#cancelled_ids + 1] = id
  elseif lapsed then
    redis.call('ZREM', p .. 'active', id)
    redis.call('HINCRBY', jk, 'ep', 1)
    local sc = redis.call('HINCRBY', jk, 'sc', 1)
    if sc > max_stalls then
      local err = json_error('stalled ' .. sc .. ' times: the worker running it (last ' ..
        (v[3] or '?') .. ') stopped renewing its lease; the limit is ' .. max_stalls, 'STALLED')
      queue_event(p, id, 'failed', now, ttl, err, nil)
      finish(p, id, 'f', 'failed', now, ttl, err, unrecorded)
      stall_failed = stall_failed + 1
      failed_ids[#failed_ids + 1] = id
    else
      redis.call('HDEL', jk, 'ls', 'dl', 'wk')
      push_wait(p, id, (parse_opts(v[2])), now)
      requeued = requeued + 1
    end
  elseif dl and dl <= now then
    local _, _, _, to = parse_opts(v[2])
    redis.call('HINCRBY', jk, 'ep', 1)
    local err = json_error('execution exceeded its timeout of ' .. to .. ' ms', 'EXECUTION_TIMEOUT')
    queue_event(p, id, 'failed', now, ttl, err, 'TIMED_OUT')
    finish(p, id, 't', 'timedout', now, ttl, err, unrecorded)
    redis.call('PUBLISH', p .. 'cancel', id)
    timed_out = timed_out + 1
    timed_out_ids[#timed_out_ids + 1] = id
  else
    -- Neither is due (a score written by an older Renew): put the entry at its real due time.
    redis.call('ZADD', p .. 'active', 'XX', (dl and dl < ls) and v[5] or v[4], id)
  end
end
if requeued > 0 then wake(p) end
-- Expired waiting jobs: the heads of the bands first (where they are), then, once the heads are
-- clear, a slice of the whole index. While a head sweep stops at its budget, the next run comes
-- after follow_up_ms instead of the interval: 20,000 jobs that expired together are gone in 20
-- runs of about 2 ms each, within a second or two. (The whole-index slice waits meanwhile: only
-- more than ~20,000 waiting jobs expiring every second, for long, would keep it waiting.)
local _, more = sweep_wait_heads(p, batch)
if not more then sweep(p, 'wait', batch) end
sweep(p, 'delayed', batch)
if stall_failed > 0 then trim(p, 'failed', now, ttl, keep) end
if timed_out > 0 then trim(p, 'timedout', now, ttl, keep) end
if cancelled > 0 then trim(p, 'cancelled', now, ttl, keep) end
if more and ARGV[8] ~= '1' then redis.call('PEXPIRE', p .. 'hk', ARGV[10]) end
return {1, promoted, requeued, stall_failed, timed_out, cancelled, failed_ids, timed_out_ids,
        cancelled_ids, more and 1 or 0}
