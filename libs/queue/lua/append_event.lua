-- Appends one event to an execution's log and the queue's feed.
-- KEYS[1]: queue prefix
-- ARGV: id, workflow_id, workspace_id, event JSON (without seq), ttl_s
-- Returns the event's seq.
return append_event(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]))
