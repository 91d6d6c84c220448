-- Shared helpers, prepended to every ndx queue script (see libs/queue/CMakeLists.txt).
--
-- Layout (all keys of queue Q share the hash tag {Q}, so every script runs in one slot):
--   <p> = "ndx:{Q}:"
--   <p>j:<id>        HASH   the job: d (payload JSON, immutable), o (packed options:
--                           "priority max_attempts backoff_ms timeout_ms created_ms workspace"),
--                           st (state), rt (ready since, ms), ep (fencing epoch), at (attempts
--                           started), sc (stall count), wk (worker), ls (lease expiry ms),
--                           dl (deadline ms), ft (finished ms), err (last error JSON), ro (retry of)
--   <p>wait          ZSET   ready jobs; score = (priority + 1000) * 2^40 + seq (FIFO within a
--                           priority; lower priority number first)
--   <p>seq           STRING counter for the FIFO part of wait scores
--   <p>bands         HASH   priority -> number of waiting jobs (for the oldest-waiting age)
--   <p>delayed       ZSET   jobs due later (scheduled start, retry backoff); score = due ms
--   <p>active        ZSET   claimed jobs; score = the earlier of the lease expiry (ls) and the
--                           deadline (dl), so one index serves stalled recovery and timeouts
--   <p>deadlines     ZSET   legacy (older versions' claims: job deadline ms); housekeeping drains it
--   <p>completed, <p>failed, <p>timedout, <p>cancelled
--                    ZSET   finished jobs; score = finished ms (trimmed by age and count)
--   <p>idem:<key>    STRING request id -> execution id (idempotent enqueue), TTL = state TTL
--   <p>wake          LIST   at most one element: a wake-up for consumers blocked in BLPOP
--   <p>hk            STRING housekeeping lease (one process per interval does it)
--   <p>unrecorded    ZSET   ended jobs whose end is not yet in the history (PostgreSQL or its
--                           outbox); score = finished ms. Their keys have no TTL until the end is
--                           recorded (recorded.lua starts it), so housekeeping can always read how
--                           they ended (libs/service/history.h, RecordUnrecorded)
--   <p>o:<id>        HASH   node-run checkpoints of the execution (written by the worker)
--   <p>ev:<id>       per-execution event log (written by the worker)
--   channel <p>cancel       PUBLISH <id> when an active job is asked to cancel
--
-- States (st): w waiting, d delayed, a active, k cancelling, c completed, f failed,
--              t timed out, x cancelled.

local FIFO_SPAN = 1099511627776 -- 2^40

local function job_key(p, id) return p .. 'j:' .. id end

-- One command for many members (`cmd key args...`, args a flat table): a command per job costs
-- Redis a command lookup, a key lookup and the Lua call itself. Sent in chunks of at most 1000
-- arguments (`step` = arguments per member, so that a chunk never splits one).
local function bulk(cmd, key, args, step)
  local chunk = 1000 - 1000 % step
  for i = 1, #args, chunk do
    redis.call(cmd, key, unpack(args, i, math.min(i + chunk - 1, #args)))
  end
end

-- Unpacks the "o" field.
local function parse_opts(o)
  local pr, ma, bo, to, ct, ws = string.match(o, '^(%S+) (%S+) (%S+) (%S+) (%S+) ?(.*)$')
  return tonumber(pr), tonumber(ma), tonumber(bo), tonumber(to), tonumber(ct), ws
end

local function wake(p)
  if redis.call('LLEN', p .. 'wake') == 0 then redis.call('LPUSH', p .. 'wake', '1') end
end

-- Puts a job (whose hash exists) into wait at its priority, as ready since `now`.
local function push_wait(p, id, priority, now)
  local seq = redis.call('INCR', p .. 'seq')
  redis.call('ZADD', p .. 'wait', (priority + 1000) * FIFO_SPAN + seq, id)
  redis.call('HINCRBY', p .. 'bands', priority, 1)
  redis.call('HSET', job_key(p, id), 'st', 'w', 'rt', now)
end

-- Moves due delayed jobs to wait, at most `limit`. Returns how many moved.
local function promote_due(p, now, limit)
  local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', p .. 'delayed', id)
    local o = redis.call('HGET', job_key(p, id), 'o')
    if o then
      local pr = parse_opts(o)
      push_wait(p, id, pr, now)
    end
  end
  if #due > 0 then wake(p) end
  return #due
end

-- Ends a job in a terminal state: st, ft, its index, and every key of the execution expires
-- after the completion TTL. `now` and `ttl` may be numbers or strings (strings save Redis the
-- formatting of a number per command).
-- With `unrecorded` (the caller keeps a history), the keys get no TTL yet: the job joins
-- <p>unrecorded, and the TTL starts once its end is in the history (recorded.lua). Otherwise a
-- holder killed before its history write, with PostgreSQL down for longer than the completion
-- TTL, left the row RUNNING with nothing in Redis to finish it from.
-- With `batched` (a table), the job's id is appended to it instead of the ZREM from active and
-- the ZADD to the index: the caller sends those for all its jobs at once (bulk).
local function finish(p, id, state, index, now, ttl, err, unrecorded, batched)
  local jk = job_key(p, id)
  if batched then
    batched[#batched + 1] = id
  else
    redis.call('ZREM', p .. 'active', id)
  end
  if err then
    redis.call('HSET', jk, 'st', state, 'ft', now, 'err', err)
  else
    redis.call('HSET', jk, 'st', state, 'ft', now)
  end
  -- ls and dl stay (no HDEL per job): they mean nothing once the job is not held, and Get
  -- reports them only for a held job.
  if not batched then redis.call('ZADD', p .. index, now, id) end
  if unrecorded then
    redis.call('ZADD', p .. 'unrecorded', now, id)
    redis.call('PERSIST', jk)
    redis.call('PERSIST', p .. 'o:' .. id)
    redis.call('PERSIST', p .. 'ev:' .. id)
    return
  end
  redis.call('EXPIRE', jk, ttl)
  redis.call('EXPIRE', p .. 'o:' .. id, ttl)
  redis.call('EXPIRE', p .. 'ev:' .. id, ttl)
end

-- Removes the jobs that expired while waiting from the head of each priority band of <p>wait,
-- where they are: within a band jobs wait in enqueue order, and with one state TTL they expire in
-- that order, so a band's expired jobs are its oldest. Stops at a band's first live job; looks at
-- no more than `budget` entries in all (an EXISTS and a share of the ZRANGEBYSCORE and ZREM each,
-- about 2 us: 1,000 entries block Redis for about 2 ms), which bounds how long this blocks Redis.
-- What a head sweep cannot see (a job with a shorter TTL behind a live one) is left to sweep(),
-- which walks the whole index over successive calls. Returns how many it removed, and true when
-- it stopped at its budget with expired entries possibly left at a head (run again soon).
local function sweep_wait_heads(p, budget)
  local removed = 0
  local exhausted = false
  local bands = redis.call('HGETALL', p .. 'bands')
  for i = 1, #bands, 2 do
    if budget <= 0 then break end
    if tonumber(bands[i + 1]) > 0 then
      local pr = tonumber(bands[i])
      local lo = string.format('%.0f', (pr + 1000) * FIFO_SPAN)
      local hi = '(' .. string.format('%.0f', (pr + 1001) * FIFO_SPAN)
      local live = false
      while not live and budget > 0 do
        local n = math.min(budget, 100)
        local ids = redis.call('ZRANGEBYSCORE', p .. 'wait', lo, hi, 'LIMIT', 0, n)
        local gone = {}
        for _, id in ipairs(ids) do
          if redis.call('EXISTS', job_key(p, id)) == 1 then
            live = true
            break
          end
          gone[#gone + 1] = id
        end
        -- What was looked at: the expired entries, and the live one a band stops at.
        budget = budget - #gone - (live and 1 or 0)
        if #gone > 0 then
          redis.call('ZREM', p .. 'wait', unpack(gone))
          redis.call('HINCRBY', p .. 'bands', bands[i], -#gone)
          removed = removed + #gone
        end
        if #ids < n then break end
      end
      if not live and budget <= 0 then exhausted = true end
    end
  end
  return removed, exhausted
end

-- Removes, from a wait or delayed index, entries whose job hash has expired (it waited longer than
-- the state TTL), scanning at most about `count` entries per call from a cursor kept in
-- <p>sweep:<index>, so that repeated calls cover the whole index and no index keeps memory for
-- jobs that are gone. Returns how many it removed.
local function sweep(p, index, count)
  local ck = p .. 'sweep:' .. index
  local cursor = redis.call('GET', ck) or '0'
  local r = redis.call('ZSCAN', p .. index, cursor, 'COUNT', count)
  local items = r[2]
  local removed = 0
  for i = 1, #items, 2 do
    local id = items[i]
    if redis.call('EXISTS', job_key(p, id)) == 0 then
      redis.call('ZREM', p .. index, id)
      if index == 'wait' then
        local pr = math.floor(tonumber(items[i + 1]) / FIFO_SPAN) - 1000
        redis.call('HINCRBY', p .. 'bands', pr, -1)
      end
      removed = removed + 1
    end
  end
  if r[1] == '0' then redis.call('DEL', ck) else redis.call('SET', ck, r[1]) end
  return removed
end

-- Trims a finished index by age (older than ttl) and count (keep at most `keep`).
local function trim(p, index, now, ttl, keep)
  redis.call('ZREMRANGEBYSCORE', p .. index, '-inf', now - ttl * 1000)
  if keep > 0 then
    local n = redis.call('ZCARD', p .. index)
    if n > keep then redis.call('ZREMRANGEBYRANK', p .. index, 0, n - keep - 1) end
  end
end

local function json_error(message, code)
  return cjson.encode({message = message, code = code})
end

-- An error JSON as a table; text that is not a JSON object becomes {message = text}.
local function decode_error(err)
  local ok, e = pcall(cjson.decode, err)
  if ok and type(e) == 'table' then return e end
  return {message = err}
end

-- Events ----------------------------------------------------------------------------------------
-- Per execution: <p>ev:<id> LIST, one JSON event per element; an event's seq is its position
-- (1, 2, 3...), so seq is gap-free and assigned atomically with the state change that appends it.
-- Every appended event is also added to the queue's feed <p>feed (a STREAM capped at about
-- FEED_MAXLEN entries, fields e = execution id, s = seq, w = workflow id, ws = workspace id,
-- j = event JSON), which the
-- one feed reader of each process follows to serve live subscribers.

local FEED_MAXLEN = 100000

-- "2026-01-01T00:00:00.123Z" from Unix milliseconds (no os.date inside Redis).
local function iso_time(ms)
  local s = math.floor(ms / 1000)
  local millis = ms - s * 1000
  local days = math.floor(s / 86400)
  local rem = s - days * 86400
  -- civil_from_days (H. Hinnant)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) -
                          math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(rem / 3600),
                       math.floor((rem % 3600) / 60), rem % 60, millis)
end

-- Appends one event (JSON text without seq) to the execution's log and the feed; returns its seq.
-- The log lives as long as the execution's state: `ttl` seconds from its first event (finish()
-- later shortens it to the completion TTL).
local function append_event(p, id, workflow_id, workspace, json, ttl)
  local ek = p .. 'ev:' .. id
  local seq = redis.call('RPUSH', ek, json)
  if seq == 1 then redis.call('EXPIRE', ek, ttl) end
  redis.call('XADD', p .. 'feed', 'MAXLEN', '~', FEED_MAXLEN, '*', 'e', id, 's', seq, 'w',
             workflow_id, 'ws', workspace, 'j', json)
  return seq
end

-- The workflow id of a job, from its payload (only on rare paths: cancel, timeout, stall).
local function workflow_of(p, id)
  local d = redis.call('HGET', job_key(p, id), 'd')
  if not d then return '' end
  local ok, payload = pcall(cjson.decode, d)
  if ok and type(payload) == 'table' and type(payload.workflowId) == 'string' then
    return payload.workflowId
  end
  return ''
end

-- Appends a queue-side event (cancelled, failed by timeout or stalls).
local function workspace_of(p, id)
  local o = redis.call('HGET', job_key(p, id), 'o')
  if not o then return '' end
  local _, _, _, _, _, ws = parse_opts(o)
  return ws or ''
end

local function queue_event(p, id, kind, now, ttl, err, state)
  local wf = workflow_of(p, id)
  local ev = {type = kind, executionId = id, workflowId = wf, timestamp = iso_time(now)}
  if err then ev.error = decode_error(err) end
  if state then ev.executionState = state end
  return append_event(p, id, wf, workspace_of(p, id), cjson.encode(ev), ttl)
end
