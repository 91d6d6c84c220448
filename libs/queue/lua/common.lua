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
--   <p>active        ZSET   claimed jobs; score = lease expiry ms
--   <p>deadlines     ZSET   claimed jobs; score = job deadline ms
--   <p>completed, <p>failed, <p>timedout, <p>cancelled
--                    ZSET   finished jobs; score = finished ms (trimmed by age and count)
--   <p>idem:<key>    STRING request id -> execution id (idempotent enqueue), TTL = state TTL
--   <p>wake          LIST   at most one element: a wake-up for consumers blocked in BLPOP
--   <p>hk            STRING housekeeping lease (one process per interval does it)
--   <p>o:<id>        HASH   node-run checkpoints of the execution (written by the worker)
--   <p>ev:<id>       per-execution event log (written by the worker)
--   channel <p>cancel       PUBLISH <id> when an active job is asked to cancel
--
-- States (st): w waiting, d delayed, a active, k cancelling, c completed, f failed,
--              t timed out, x cancelled.

local FIFO_SPAN = 1099511627776 -- 2^40

local function job_key(p, id) return p .. 'j:' .. id end

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
-- after the completion TTL.
local function finish(p, id, state, index, now, ttl, err)
  local jk = job_key(p, id)
  redis.call('ZREM', p .. 'active', id)
  redis.call('ZREM', p .. 'deadlines', id)
  if err then
    redis.call('HSET', jk, 'st', state, 'ft', now, 'err', err)
  else
    redis.call('HSET', jk, 'st', state, 'ft', now)
  end
  redis.call('HDEL', jk, 'ls', 'dl')
  redis.call('ZADD', p .. index, now, id)
  redis.call('EXPIRE', jk, ttl)
  redis.call('EXPIRE', p .. 'o:' .. id, ttl)
  redis.call('EXPIRE', p .. 'ev:' .. id, ttl)
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
