// File: execution_store.h
//
// ndx::store: the execution history (PostgreSQL's NodeDrop-compatible `executions` and
// `node_executions` tables). Redis is the source of truth while an execution runs; the store keeps
// the history, which NodeDrop's frontend and ndx's GetExecution / ListExecutions read.
//
//   ExecutionStore           the interface (this file): writes of the execution lifecycle, reads
//                            (one execution with its node runs; keyset-paginated lists), pruning.
//   PostgresExecutionStore   the real one (postgres_execution_store.h), fenced by the database.
//   OutboxStore              wraps it: while PostgreSQL is down, writes queue in a bounded Redis
//                            outbox and are applied later, in order, exactly once (outbox_store.h).
//   InMemoryExecutionStore   a fake with the same contract, for unit tests of callers.
//   ApplyMigrations()        creates / upgrades the schema (migrations.h).
//
// The write sequence of one execution (what ndx-queue and ndx-worker call):
//
//   store.CreateExecution({.id = id, .workflow_id = wf, ..., .created_at = now});  // queue, before
//                                                                                   // the enqueue
//   store.MarkEnqueueFailed({id, error_json, now});   // queue, only if the enqueue failed
//   store.StartAttempt({id, epoch, attempt, worker_id, now});           // worker, after a claim
//   store.RecordNodeRun({.execution_id = id, .epoch = epoch, .run_key = key, ...});  // per node
//   store.FinishExecution({id, epoch, ExecutionStatus::kSuccess, "", now});          // the end
//
// Status strings in rows are NodeDrop's (fact sheet §8): executions RUNNING (from creation on, as
// NodeDrop does: waiting, delayed and active executions are all RUNNING), SUCCESS, ERROR,
// CANCELLED, TIMEOUT; node rows RUNNING, SUCCESS, ERROR, SKIPPED, CANCELLED, WAITING.
//
// Fencing. Writes from a worker carry the lease epoch of its claim (> 0). The store rejects a
// write whose epoch is lower than the highest epoch already written for that execution with
// kAborted and SQLSTATE NDX01 (pg::SqlStateOf(status) == pg::kStaleEpochSqlState; IsStaleEpoch()
// below): the worker lost its lease and must stop. A higher epoch becomes the new bar. kNoEpoch
// (0) means "not a lease holder" (ndx-queue's own writes: create, enqueue failure, cancel of a
// waiting execution) and is not checked.
//
// Terminal states are final: FinishExecution / MarkEnqueueFailed on an execution that already
// ended with the same status is OK and changes nothing (a repeated write); with another status it
// is kFailedPrecondition and changes nothing (a late SUCCESS never overwrites CANCELLED).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace ndx::store {

// `executions.status`.
enum class ExecutionStatus { kRunning, kSuccess, kError, kCancelled, kTimeout };
// `node_executions.status`.
enum class NodeStatus { kWaiting, kRunning, kSuccess, kError, kSkipped, kCancelled };

// "RUNNING", "SUCCESS", "ERROR", "CANCELLED", "TIMEOUT".
absl::string_view ToString(ExecutionStatus status);
// "WAITING", "RUNNING", "SUCCESS", "ERROR", "SKIPPED", "CANCELLED".
absl::string_view ToString(NodeStatus status);
// The inverse of ToString (exact, upper case). kInvalidArgument for any other text.
absl::StatusOr<ExecutionStatus> ParseExecutionStatus(absl::string_view text);
absl::StatusOr<NodeStatus> ParseNodeStatus(absl::string_view text);
// True for every status but kRunning.
bool IsTerminal(ExecutionStatus status);

// Epoch of writes that do not come from a lease holder; never checked, never stored.
inline constexpr int64_t kNoEpoch = 0;

// True when `status` is the store's stale-epoch rejection (kAborted with SQLSTATE NDX01).
bool IsStaleEpoch(const absl::Status& status);

// True when a failed write may succeed if tried again later (the database is down or busy, a
// connection was lost, ...), false when the store refused it for good (no such row, ended
// otherwise, a stale epoch, invalid). The outbox drainer and the history's retries use it.
bool IsTransientStoreError(const absl::Status& status);

// An unset instant (absent timestamp column).
inline constexpr absl::Time kNoTime = absl::InfinitePast();

// CreateExecution's argument: one new `executions` row, status RUNNING.
struct NewExecution {
  std::string id;                      // required (UUID from ndx-queue)
  std::string workflow_id;             // required (may be "new" for an unsaved workflow)
  std::string workflow_name;           // "" = null
  std::string workspace_id;            // "" = null (no workspace)
  std::string user_id;                 // "" = null
  std::string request_id;              // idempotency key of the request; "" = null
  std::string trigger_node_id;         // "" = null
  std::string trigger_data_json;       // `trigger_data`, one JSON value; "" = null
  std::string workflow_snapshot_json;  // `workflow_snapshot`, one JSON value; "" = null
  std::string mode = "queue";          // "queue" or "direct"
  std::string queue;                   // queue name; "" = null (direct mode)
  std::string retry_of_execution_id;   // RetryExecution's source; "" = null
  // Creation time: `created_at`, `started_at` (NodeDrop shows it as startedAt and sets it at
  // creation), `queued_at`, `updated_at`. Required.
  absl::Time created_at = kNoTime;
};

// MarkEnqueueFailed's argument.
struct EnqueueFailure {
  std::string execution_id;
  std::string error_json;   // `error`; "" = {"message": "enqueue failed", "code": "ENQUEUE_FAILED"}
  absl::Time at = kNoTime;  // finished_at
};

// StartAttempt's argument: a worker claimed the execution (or direct mode started it).
struct AttemptStart {
  std::string execution_id;
  int64_t epoch = kNoEpoch;         // the claim's lease epoch
  int32_t attempt = 0;              // 1 for the first run; `attempts` keeps the maximum seen
  std::string worker_id;            // "" = null
  absl::Time claimed_at = kNoTime;  // `claimed_at` keeps the FIRST claim (queue wait = claimed -
                                    // queued); later attempts leave it unchanged
};

// One run of one node: a `node_executions` row, keyed by (execution_id, run_key).
struct NodeRun {
  std::string execution_id;  // required; the execution row must exist (else kFailedPrecondition)
  int64_t epoch = kNoEpoch;  // the writer's lease epoch
  std::string run_key;       // required: the engine's key of this run, unique in the execution
  std::string node_id;       // required
  std::string node_name;     // "" = null
  std::string node_type;     // "" = null
  NodeStatus status = NodeStatus::kRunning;
  int32_t attempt = 0;      // execution attempt in which it ran
  int32_t run_index = 0;    // 0 for the node's first run, 1, 2... (Loop bodies)
  std::string input_json;   // "" = null
  std::string output_json;  // "" = null
  std::string error_json;   // "" = null
  absl::Time started_at = kNoTime;
  absl::Time finished_at = kNoTime;
};

// FinishExecution's argument.
struct ExecutionFinish {
  std::string execution_id;
  int64_t epoch = kNoEpoch;
  ExecutionStatus status = ExecutionStatus::kSuccess;  // REQUIRES: terminal
  std::string error_json;                              // "" = null
  absl::Time finished_at = kNoTime;                    // required
};

// A stored node run, as read back.
struct NodeRunRecord {
  NodeRun run;     // run.epoch is the epoch that wrote it last
  std::string id;  // row id: "<execution_id>:<run_key>" for rows written by ndx
  absl::Time created_at = kNoTime;
  absl::Time updated_at = kNoTime;
};

// A stored execution, as read back. Absent text columns are "", absent times kNoTime.
struct ExecutionRecord {
  std::string id;
  std::string workflow_id;
  std::string workflow_name;
  std::string workspace_id;
  std::string user_id;
  std::string request_id;
  std::string trigger_node_id;
  std::string retry_of_execution_id;
  ExecutionStatus status = ExecutionStatus::kRunning;
  std::string mode;
  std::string queue;
  std::string worker_id;
  int64_t fencing_epoch = 0;
  int32_t attempts = 0;
  std::string trigger_data_json;
  std::string error_json;
  std::string workflow_snapshot_json;  // filled by GetExecution only
  absl::Time created_at = kNoTime;
  absl::Time started_at = kNoTime;
  absl::Time queued_at = kNoTime;
  absl::Time claimed_at = kNoTime;
  absl::Time finished_at = kNoTime;
  absl::Time updated_at = kNoTime;
  // Filled by GetExecution, in the order the runs started (rows never started last, by creation).
  std::vector<NodeRunRecord> node_runs;
};

// What GetExecution returns.
struct GetOptions {
  bool include_node_runs = true;
  bool include_node_outputs = true;  // false: node rows without input/output JSON (BASIC view)
  bool include_snapshot = true;
};

// ListExecutions' filter and page. Filters combine with AND; unset ones match everything.
struct ListQuery {
  std::string workspace_id;               // "" = all workspaces
  std::string workflow_id;                // "" = all workflows
  std::vector<ExecutionStatus> statuses;  // empty = any status
  absl::Time created_after = kNoTime;     // inclusive; kNoTime = unbounded
  absl::Time created_before = kNoTime;    // exclusive; kNoTime = unbounded
  int page_size = 0;                      // 0 = 50; above 100 = 100; negative = invalid
  std::string page_token;                 // "" = first page
  int skip = 0;                           // rows to skip after the token's position
  bool count_total = false;               // fill ExecutionPage::total (a COUNT(*): costs time)
};

struct ExecutionPage {
  // Newest first: created_at DESC, id DESC. Without node runs and workflow snapshots.
  std::vector<ExecutionRecord> executions;
  std::string next_page_token;   // "" when this page is the last
  std::optional<int64_t> total;  // when ListQuery::count_total
};

// Every write of the interface as one value: what the outbox stores and replays.
using StoreWrite =
    std::variant<NewExecution, EnqueueFailure, AttemptStart, std::vector<NodeRun>, ExecutionFinish>;

// ExecutionStore: the history of executions. Implementations are thread-safe.
//
// Errors common to all methods: kInvalidArgument (a required field is missing, a status is not
// allowed there, a JSON text is not valid JSON), kUnavailable (the database cannot be reached; the
// write did not happen, or its outcome is unknown when the connection broke during COMMIT — every
// write is safe to repeat), kDeadlineExceeded (statement timeout), kInternal (a bug).
class ExecutionStore {
 public:
  virtual ~ExecutionStore() = default;

  // Inserts the execution row, status RUNNING. kAlreadyExists if a row with that id exists.
  virtual absl::Status CreateExecution(const NewExecution& execution) = 0;

  // The enqueue after CreateExecution failed: the row becomes ERROR with the reason and
  // finished_at, so that no RUNNING row is left that nothing runs. kNotFound if there is no row;
  // kFailedPrecondition if it already ended with another status.
  virtual absl::Status MarkEnqueueFailed(const EnqueueFailure& failure) = 0;

  // Records a claim: fencing_epoch = epoch (rejected if stale), attempts = max(attempts, attempt),
  // worker_id, claimed_at if not set yet. kNotFound if there is no row; kAborted (NDX01) if stale.
  virtual absl::Status StartAttempt(const AttemptStart& start) = 0;

  // Upserts node rows (by execution_id + run_key), in one transaction: all or none. Writing the
  // same run again (RUNNING, then SUCCESS; or a repeat) updates the row. kAborted (NDX01) if an
  // epoch is stale; kFailedPrecondition if the execution row does not exist.
  virtual absl::Status RecordNodeRuns(absl::Span<const NodeRun> runs) = 0;
  absl::Status RecordNodeRun(const NodeRun& run) { return RecordNodeRuns({&run, 1}); }

  // Ends the execution (see the file comment for terminal states). kNotFound if there is no row;
  // kAborted (NDX01) if the epoch is stale; kFailedPrecondition if it already ended differently.
  virtual absl::Status FinishExecution(const ExecutionFinish& finish) = 0;

  // One execution. `workspace_id` non-empty restricts to that workspace: an execution of another
  // workspace is kNotFound, like an unknown id.
  virtual absl::StatusOr<ExecutionRecord> GetExecution(absl::string_view id,
                                                       absl::string_view workspace_id,
                                                       const GetOptions& options = {}) = 0;

  // One page of executions, newest first (created_at DESC, id DESC). The page token is an opaque
  // keyset cursor (the position after the last row returned): pages stay stable while new
  // executions are inserted (they sort before the cursor). kInvalidArgument for a malformed token
  // or a token made for other filters, negative page_size or skip.
  virtual absl::StatusOr<ExecutionPage> ListExecutions(const ListQuery& query) = 0;

  // Deletes up to `batch_size` executions created before `created_before` that are no longer
  // RUNNING, with their node rows (oldest first). Returns how many executions were deleted; call
  // again while it returns batch_size (PruneHistory() does). kInvalidArgument if batch_size < 1.
  virtual absl::StatusOr<int64_t> Prune(absl::Time created_before, int batch_size) = 0;

  // Deletes one execution and its node rows (the user's "delete"). `workspace_id` non-empty
  // restricts to that workspace, as in GetExecution. kNotFound if there is no such row;
  // kFailedPrecondition if the row is still RUNNING (or PAUSED) and not `even_if_running` (set
  // it when the live state in Redis says the execution ended and only the row lags behind).
  virtual absl::Status DeleteExecution(absl::string_view id, absl::string_view workspace_id,
                                       bool even_if_running) = 0;

  // Applies one StoreWrite through the methods above.
  absl::Status Apply(const StoreWrite& write);
};

// NDX_HISTORY_RETENTION_DAYS: prunes executions created more than `retention` before `now` in
// batches of `batch_size`, at most `max_batches` batches (so one call stays short; call it again
// later, e.g. every few minutes). Returns the number of executions deleted. kInvalidArgument for a
// non-positive retention, batch size or batch count.
absl::StatusOr<int64_t> PruneHistory(ExecutionStore& store, absl::Time now,
                                     absl::Duration retention, int batch_size = 500,
                                     int max_batches = 20);

// ---------------------------------------------------------------------------------------------
// Pure helpers, exposed for the implementations and their tests.

// The keyset position of a page token.
struct PageCursor {
  absl::Time created_at = kNoTime;  // microsecond precision
  std::string id;
};

// The effective page size: 0 -> 50, > 100 -> 100. kInvalidArgument if negative.
absl::StatusOr<int> EffectivePageSize(int page_size);

// A fingerprint of the query's filters (not of its page fields), stored in page tokens so that a
// token used with other filters is refused. Stable across processes and builds (FNV-1a).
uint64_t FilterFingerprint(const ListQuery& query);

// Encodes a cursor for `query`'s filters as an opaque, URL-safe token.
std::string EncodePageToken(const PageCursor& cursor, const ListQuery& query);

// Decodes `query.page_token`. kInvalidArgument if malformed or made for other filters.
absl::StatusOr<PageCursor> DecodePageToken(const ListQuery& query);

// Checks a write's required fields (what every implementation refuses with kInvalidArgument).
absl::Status ValidateWrite(const StoreWrite& write);

// Whether `text` is one valid JSON value (empty text counts as "absent", so it is valid).
bool IsValidJsonOrEmpty(absl::string_view text);

}  // namespace ndx::store
