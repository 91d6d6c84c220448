-- Reports a node run for the holder of a job: appends its events (node-started, node-completed,
-- node-skipped, node-failed, retrying; the worker sends a node's node-started with the event that
-- ends or interrupts the run, unless the run takes long) and optionally saves its checkpoint, in
-- one step: the checkpoint of a node run and its node-completed event are one script
-- (DESIGN.md), so a crash never leaves one without the other.
-- KEYS[1]: queue prefix
-- ARGV: id, epoch, workflow_id, workspace, state_ttl_s, run key ("" = no checkpoint),
--   checkpoint JSON, "1" when the checkpoints' hash is known to have its TTL (an earlier call of
--   this holder set it; "0" checks), call token ("" = none), then the events' JSON (0 or more),
--   appended in order
-- Returns {status, seq}: status 1 ok, 2 cancelling (stop after this), 0 lost (nothing written);
-- seq of the last event appended (0 when none).
-- Lost replies. The caller repeats a call whose reply it did not get (e.g. Redis was killed after
-- running the script), and the repeat must not append the events again (a node-started,
-- node-failed or retrying twice). So each call of a holder carries a token, "<epoch>:<n>" with n
-- counting the holder's calls for the job; the script keeps the last token it applied, and its
-- reply, in the job hash (tk, tr). A holder's calls for one job are sequential (it repeats an
-- unanswered call before it makes the next), so the last token suffices: a call whose token is
-- the stored one is a repeat, writes nothing and gets the first reply's seq (status is the
-- current one). Fail, Complete and AckCancel take the same token. Besides, a call that saves a
-- checkpoint already saved with the same content writes nothing (a node whose checkpoint exists
-- never runs again, so that is also a repeat).
local p = KEYS[1]
local id, epoch = ARGV[1], ARGV[2]
local jk = job_key(p, id)
local v = redis.call('HMGET', jk, 'ep', 'st', 'tk', 'tr')
if v[1] ~= epoch or (v[2] ~= 'a' and v[2] ~= 'k') then return {0, 0} end
local token = ARGV[9]
if token ~= '' and v[3] == token then return {(v[2] == 'k') and 2 or 1, tonumber(v[4]) or 0} end
local ttl = tonumber(ARGV[5])
if ARGV[6] ~= '' then
  local ok = p .. 'o:' .. id
  if redis.call('HGET', ok, ARGV[6]) == ARGV[7] then return {(v[2] == 'k') and 2 or 1, 0} end
  redis.call('HSET', ok, ARGV[6], ARGV[7])
  if ARGV[8] ~= '1' and redis.call('TTL', ok) < 0 then redis.call('EXPIRE', ok, ttl) end
end
local n = #ARGV - 9
local seq = 0
if n > 0 then
  -- One RPUSH for all the events (append_event() in common.lua, for several).
  local ek = p .. 'ev:' .. id
  seq = redis.call('RPUSH', ek, unpack(ARGV, 10))
  if seq == n then redis.call('EXPIRE', ek, ttl) end
  for i = 1, n do
    redis.call('XADD', p .. 'feed', 'MAXLEN', '~', FEED_MAXLEN, '*', 'e', id, 's', seq - n + i,
               'w', ARGV[3], 'ws', ARGV[4], 'j', ARGV[9 + i])
  end
end
if token ~= '' then redis.call('HSET', jk, 'tk', token, 'tr', seq) end
return {(v[2] == 'k') and 2 or 1, seq}
