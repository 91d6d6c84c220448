-- Counts per state and the age of the oldest waiting job, in O(priority bands in use).
-- KEYS[1]: queue prefix
-- ARGV: now_ms
-- Returns {waiting, active, delayed, completed, failed, cancelled, timed_out, oldest_wait_ms}
local p = KEYS[1]
local now = tonumber(ARGV[1])
local oldest = 0
local bands = redis.call('HGETALL', p .. 'bands')
for i = 1, #bands, 2 do
  local pr, count = tonumber(bands[i]), tonumber(bands[i + 1])
  if count > 0 then
    local lo = (pr + 1000) * FIFO_SPAN
    local head = redis.call('ZRANGEBYSCORE', p .. 'wait', lo, '(' .. (lo + FIFO_SPAN), 'LIMIT', 0, 1)
    if head[1] then
      local rt = tonumber(redis.call('HGET', job_key(p, head[1]), 'rt'))
      if rt and now - rt > oldest then oldest = now - rt end
    end
  end
end
return {redis.call('ZCARD', p .. 'wait'), redis.call('ZCARD', p .. 'active'),
        redis.call('ZCARD', p .. 'delayed'), redis.call('ZCARD', p .. 'completed'),
        redis.call('ZCARD', p .. 'failed'), redis.call('ZCARD', p .. 'cancelled'),
        redis.call('ZCARD', p .. 'timedout'), oldest}
