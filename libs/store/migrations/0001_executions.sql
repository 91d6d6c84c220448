-- 0001: NodeDrop's `executions` and `node_executions` tables (fact sheet §8, Drizzle migration
-- 0000_supreme_kulan_gath.sql), plus ndx's columns, indexes, the fencing triggers and the outbox's
-- applied-op table.
--
-- CREATE TABLE IF NOT EXISTS: on an existing NodeDrop database the tables (and their rows) are
-- kept as they are, and only ndx's columns, indexes and triggers are added. Timestamps are
-- `timestamp` (without time zone, Drizzle's default) holding UTC; ndx writes them through
-- ndx_ts() and reads them through ndx_us(), so the session's TimeZone never matters.

CREATE OR REPLACE FUNCTION ndx_ts(us bigint) RETURNS timestamp
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT timestamp '1970-01-01 00:00:00' + us * interval '1 microsecond' $$;

CREATE OR REPLACE FUNCTION ndx_us(ts timestamp) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (extract(epoch FROM ts) * 1000000)::bigint $$;

CREATE OR REPLACE FUNCTION ndx_utc_now() RETURNS timestamp
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT (now() AT TIME ZONE 'UTC')::timestamp $$;

CREATE TABLE IF NOT EXISTS executions (
  id text PRIMARY KEY NOT NULL,
  workflow_id text NOT NULL,
  workspace_id text,
  environment text DEFAULT 'DEVELOPMENT',
  status text DEFAULT 'RUNNING' NOT NULL,
  started_at timestamp DEFAULT now() NOT NULL,
  finished_at timestamp,
  paused_at timestamp,
  resumed_at timestamp,
  cancelled_at timestamp,
  trigger_data json,
  error json,
  execution_type text DEFAULT 'workflow',
  flow_execution_path text[],
  flow_metrics json,
  flow_progress_data json,
  progress integer DEFAULT 0,
  workflow_snapshot json,
  snapshot_version text,
  snapshot_hash text,
  created_at timestamp DEFAULT now() NOT NULL,
  updated_at timestamp DEFAULT now() NOT NULL
);

-- ndx's own columns. fencing_epoch: the highest lease epoch that wrote the row (0 = never written
-- by a worker); a write carrying a lower epoch is rejected by ndx_executions_fence().
ALTER TABLE executions
  ADD COLUMN IF NOT EXISTS fencing_epoch bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS mode text,
  ADD COLUMN IF NOT EXISTS queue text,
  ADD COLUMN IF NOT EXISTS queued_at timestamp,
  ADD COLUMN IF NOT EXISTS claimed_at timestamp,
  ADD COLUMN IF NOT EXISTS worker_id text,
  ADD COLUMN IF NOT EXISTS workflow_name text,
  ADD COLUMN IF NOT EXISTS user_id text,
  ADD COLUMN IF NOT EXISTS request_id text,
  ADD COLUMN IF NOT EXISTS trigger_node_id text,
  ADD COLUMN IF NOT EXISTS retry_of_execution_id text;

-- Keyset pagination (created_at DESC, id DESC) with each filter ListExecutions offers. They
-- subsume NodeDrop's indexes on workspace_id, status and (workspace_id, created_at) (an existing
-- NodeDrop database keeps its own anyway).
CREATE INDEX IF NOT EXISTS executions_created_id_idx ON executions (created_at, id);
CREATE INDEX IF NOT EXISTS executions_workspace_created_id_idx
  ON executions (workspace_id, created_at, id);
-- (workspace, workflow): the REST list of one workflow always carries the workspace. With an
-- index on workflow_id alone, a workflow id of ANOTHER workspace (no match) scans every row of
-- that workflow (tens of ms at 1M rows); a workflow filter without workspace (trusted callers)
-- uses executions_created_id_idx and filters.
CREATE INDEX IF NOT EXISTS executions_workspace_workflow_created_id_idx
  ON executions (workspace_id, workflow_id, created_at, id);
CREATE INDEX IF NOT EXISTS executions_status_created_id_idx
  ON executions (status, created_at, id);

CREATE TABLE IF NOT EXISTS node_executions (
  id text PRIMARY KEY NOT NULL,
  node_id text NOT NULL,
  execution_id text NOT NULL,
  status text DEFAULT 'WAITING' NOT NULL,
  input_data json,
  output_data json,
  error json,
  started_at timestamp,
  finished_at timestamp,
  dependencies text[],
  execution_order integer,
  parent_node_id text,
  progress integer DEFAULT 0,
  trigger_id text,
  visual_state json,
  created_at timestamp DEFAULT now() NOT NULL,
  updated_at timestamp DEFAULT now() NOT NULL
);

-- ndx writes node rows with id = '<execution id>:<run key>' so that re-applying a write is an
-- upsert on the primary key; run_key keeps the engine's key.
ALTER TABLE node_executions
  ADD COLUMN IF NOT EXISTS run_key text,
  ADD COLUMN IF NOT EXISTS node_name text,
  ADD COLUMN IF NOT EXISTS node_type text,
  ADD COLUMN IF NOT EXISTS fencing_epoch bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS run_index integer NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS node_executions_execution_id_idx ON node_executions (execution_id);

-- Fencing, decided by the database itself. An UPDATE that changes fencing_epoch to a LOWER value
-- is a write from a worker whose lease was taken over: it raises SQLSTATE NDX01 (PgPool maps it
-- to kAborted; pg::SqlStateOf() == kStaleEpochSqlState). A higher value is stored, so the newest
-- lease holder raises the bar for all older ones. Writes that do not carry an epoch (ndx-queue,
-- NodeDrop's own backend) leave the column unchanged and are not checked.
CREATE OR REPLACE FUNCTION ndx_executions_fence() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.fencing_epoch < OLD.fencing_epoch THEN
    RAISE EXCEPTION 'stale lease epoch % for execution % (current epoch %)',
      NEW.fencing_epoch, OLD.id, OLD.fencing_epoch USING ERRCODE = 'NDX01';
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER ndx_executions_fence
  BEFORE UPDATE ON executions
  FOR EACH ROW WHEN (NEW.fencing_epoch IS DISTINCT FROM OLD.fencing_epoch)
  EXECUTE FUNCTION ndx_executions_fence();

-- A node row written with an epoch (> 0) is checked against its execution's fencing_epoch, read
-- FOR SHARE so that a concurrent takeover (which updates the execution row) is waited for, never
-- raced: the stale write either commits before the takeover or is rejected after it. A higher
-- epoch raises the execution's. A node row whose execution does not exist is refused (23503).
CREATE OR REPLACE FUNCTION ndx_node_executions_fence() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  current_epoch bigint;
BEGIN
  SELECT fencing_epoch INTO current_epoch FROM executions WHERE id = NEW.execution_id FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'execution % does not exist (node run %)', NEW.execution_id, NEW.id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NEW.fencing_epoch < current_epoch THEN
    RAISE EXCEPTION 'stale lease epoch % for execution % (current epoch %)',
      NEW.fencing_epoch, NEW.execution_id, current_epoch USING ERRCODE = 'NDX01';
  END IF;
  IF NEW.fencing_epoch > current_epoch THEN
    UPDATE executions SET fencing_epoch = NEW.fencing_epoch WHERE id = NEW.execution_id;
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER ndx_node_executions_fence
  BEFORE INSERT OR UPDATE ON node_executions
  FOR EACH ROW WHEN (NEW.fencing_epoch > 0)
  EXECUTE FUNCTION ndx_node_executions_fence();

-- Ends an execution: the guarded transition RUNNING -> terminal status. Returns 'updated',
-- 'same' (already in that terminal status: a repeated write, nothing changes), 'missing', or
-- 'terminal:<status>' (already ended differently; nothing changes). A stale epoch raises NDX01,
-- also when the row has already ended.
CREATE OR REPLACE FUNCTION ndx_finish_execution(
    p_id text, p_epoch bigint, p_status text, p_error json, p_finished_us bigint)
  RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  cur_status text;
  cur_epoch bigint;
BEGIN
  UPDATE executions
     SET status = p_status,
         error = p_error,
         finished_at = ndx_ts(p_finished_us),
         cancelled_at = CASE WHEN p_status = 'CANCELLED' THEN ndx_ts(p_finished_us)
                             ELSE cancelled_at END,
         fencing_epoch = CASE WHEN p_epoch = 0 THEN fencing_epoch ELSE p_epoch END,
         updated_at = ndx_utc_now()
   WHERE id = p_id AND status IN ('RUNNING', 'PAUSED');
  IF FOUND THEN
    RETURN 'updated';
  END IF;
  SELECT status, fencing_epoch INTO cur_status, cur_epoch FROM executions WHERE id = p_id;
  IF NOT FOUND THEN
    RETURN 'missing';
  END IF;
  IF p_epoch <> 0 AND p_epoch < cur_epoch THEN
    RAISE EXCEPTION 'stale lease epoch % for execution % (current epoch %)',
      p_epoch, p_id, cur_epoch USING ERRCODE = 'NDX01';
  END IF;
  IF cur_status = p_status THEN
    RETURN 'same';
  END IF;
  RETURN 'terminal:' || cur_status;
END $$;

-- Outbox ops applied so far (OutboxStore): the op id is inserted in the same transaction as the
-- op's effect, so an op that is delivered again (the drainer died between COMMIT and removing it
-- from Redis, or two drainers raced) is recognised and skipped. Pruned with the history.
CREATE TABLE IF NOT EXISTS ndx_outbox_applied (
  op_id text PRIMARY KEY NOT NULL,
  applied_at timestamp NOT NULL DEFAULT ndx_utc_now()
);
CREATE INDEX IF NOT EXISTS ndx_outbox_applied_at_idx ON ndx_outbox_applied (applied_at);
