// File: redis_queue.h
//
// RedisQueue: the durable execution queue, one named queue in Redis. Every state transition is one
// Lua script (libs/queue/lua/), called by SHA; all keys of a queue share the hash tag {name}, so
// the layout is Redis Cluster-ready. Lifecycle:
//
//   Enqueue ─> waiting ─Claim─> active ─Complete─> completed
//      │          ▲               │ ├──Fail(transient, attempts left)──> delayed ──(due)──> waiting
//      └─(run_at)─┴── delayed     │ ├──Fail(permanent or last attempt)──> failed
//                                 │ ├──lease lapses (Housekeep)──> waiting, or failed past
//                                 max_stalls │ ├──deadline passes (Housekeep)──> timed out │
//                                 └──Cancel──> cancelling ──AckCancel / lease lapse──> cancelled
//   waiting / delayed ──Cancel──> cancelled
//
// A claim grants a lease (renewed by the holder with Renew) and a fencing epoch that grows with
// every claim (and every revocation) of the job: Renew, Complete, Fail, AckCancel and Release
// reject a stale epoch, so a worker that lost its lease can change nothing.
//
// Lost replies: a holder repeats a call whose reply it did not get with the same call token
// ("<epoch>:<n>"); NodeEvent, Fail, Complete and AckCancel then append nothing again and return the
// first reply. History: with QueueOptions::history_pending, an ended job keeps its keys (no TTL)
// on the "unrecorded" index until MarkRecorded() (see there and libs/service/history.h).
//
//   RedisQueue queue(pool, QueueOptions{.name = "default"}, RealClock());
//   NDX_ASSIGN_OR_RETURN(auto ids, queue.Enqueue({NewJob{.id = id, .payload = json}}));
//   NDX_ASSIGN_OR_RETURN(ClaimResult claim, queue.Claim("worker-1", 32));
//   for (const ClaimedJob& job : claim.jobs) { ...; queue.Complete({{job.id, job.epoch}}); }
//
// Thread-safe: calls borrow a connection from the RedisPool. Errors: UNAVAILABLE /
// DEADLINE_EXCEEDED when Redis is unreachable or slow (the call may or may not have taken effect:
// every script is safe to repeat with the same arguments except Enqueue without an idempotency key
// and Claim); others as documented per method.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/redis/redis_coalescer.h"

namespace ndx::queue {

struct QueueOptions {
  std::string name = "default";  // 1-64 of [A-Za-z0-9._-]
  absl::Duration lease = absl::Seconds(5);
  absl::Duration state_ttl = absl::Hours(24);      // EXECUTION_STATE_TTL
  absl::Duration completion_ttl = absl::Hours(1);  // EXECUTION_COMPLETION_TTL
  int64_t max_depth = 0;                           // waiting + delayed; 0 = unlimited
  int64_t keep_finished = 10000;                   // per finished index (completed, failed, ...)
  int max_stalls = 3;                              // lease lapses before a job fails
  absl::Duration housekeeping_interval = absl::Seconds(1);
  int housekeeping_batch = 1000;  // entries a run looks at, per kind (about 2 ms of Redis)
  // How soon the next run may start when one stopped at its batch with work left
  // (HousekeepingResult::more): a backlog goes in short runs this far apart.
  absl::Duration housekeeping_follow_up = absl::Milliseconds(50);
  size_t max_payload_bytes = 1 << 20;
  // Defaults for jobs that do not say.
  absl::Duration default_timeout = absl::Minutes(5);
  int default_max_attempts = 4;                       // the first attempt + 3 retries
  absl::Duration default_backoff = absl::Seconds(2);  // 2 s, 4 s, 8 s
  double jitter = 0;  // 0..1: each backoff delay is reduced by a random fraction up to this
  // The process keeps an execution history (PostgreSQL): every transition to a terminal state
  // (by this queue object) puts the job on the "unrecorded" index and leaves its keys without a
  // TTL, until MarkRecorded() says its end is in the history; housekeeping records the ends that
  // stay unrecorded for `history_grace` (libs/service/history.h, RecordUnrecorded). So however a
  // process dies and however long PostgreSQL is down, the end of an execution can always be read
  // from Redis until the history has it. An entry stays (and its keys live) only while the
  // history refuses the write transiently: PostgreSQL down AND its outbox full or Redis gone.
  bool history_pending = false;
  absl::Duration history_grace = absl::Seconds(15);
};

struct NewJob {
  std::string id;                         // the execution id (the caller makes it unique)
  std::string idempotency_key;            // "" = none; same key within state_ttl -> the first id
  std::string payload;                    // opaque (JSON); at most max_payload_bytes
  int priority = 0;                       // -1000..1000; lower runs sooner, FIFO within a priority
  std::optional<absl::Time> run_at;       // not before (scheduled start)
  std::optional<absl::Duration> timeout;  // deadline after each claim; 0 = none
  std::optional<int> max_attempts;        // 1..100
  std::optional<absl::Duration> backoff;  // first retry delay, doubled each retry
  std::string workspace;                  // owner, for access checks
};

struct EnqueueResult {
  std::string id;
  bool duplicate = false;  // the idempotency key was seen: `id` is the first request's
};

struct JobRef {
  std::string id;
  int64_t epoch = 0;
};

enum class LeaseState { kLost = 0, kHeld = 1, kCancelling = 2 };

// A successful end, with the `completed` event to append atomically with it ("" for none: the
// queue-only benchmark, or a caller that publishes no events).
struct Completion {
  std::string id;
  int64_t epoch = 0;
  std::string workflow_id;  // for the event feed
  std::string workspace;    // for the event feed
  std::string event_json;   // the event without "seq" (it gets the next seq of the execution)
  // The holder's call token ("" = none): a repeat of the call with the same token (its reply was
  // lost) returns the first outcome (see lua/node_event.lua).
  std::string token;
};

// Whether Fail() appends the `retrying` / `failed` / `cancelled` event it decides on, and whether
// the failure is the holder noticing the job's deadline (the job then ends timed out).
struct FailEvents {
  bool append = false;
  std::string workflow_id;
  bool timed_out = false;
  std::string token;  // the holder's call token ("" = none), as Completion::token
};

// A job as its holder knows it, for the holder-side calls (Start, NodeEvent, Suspend).
struct HeldJob {
  std::string id;
  int64_t epoch = 0;
  std::string workflow_id;
  std::string workspace;
};

struct StartResult {
  LeaseState lease = LeaseState::kLost;
  int64_t started_seq = 0;  // the `started` event's seq; 0 when it was appended before
  std::vector<std::pair<std::string, std::string>> checkpoints;  // run key -> checkpoint JSON
};

struct NodeEventResult {
  LeaseState lease = LeaseState::kLost;  // kLost: nothing was written
  int64_t seq = 0;                       // the last event's seq (0 when no event)
};

struct ClaimedJob {
  std::string id;
  int64_t epoch = 0;
  int attempt = 0;  // 1 for the first claim
  int max_attempts = 0;
  absl::Time ready_since;  // when it became ready (queue wait = claim time - ready_since)
  absl::Duration timeout;  // the job's deadline is the claim time + timeout (0: none)
  std::string payload;
};

struct ClaimResult {
  std::vector<ClaimedJob> jobs;
  std::optional<absl::Time> next_due;  // earliest delayed job, if any
};

enum class CompleteOutcome { kRejected = 0, kCompleted = 1, kCancelled = 2 };

struct FailOutcome {
  enum class Kind { kRejected, kFailed, kRetrying, kCancelled, kTimedOut };
  Kind kind = Kind::kRejected;
  absl::Duration delay;  // kRetrying: when the next attempt becomes ready
  int attempt = 0;       // the attempt that failed
};

enum class JobState {
  kWaiting,
  kDelayed,
  kActive,
  kCancelling,
  kCompleted,
  kFailed,
  kTimedOut,
  kCancelled
};
bool IsTerminal(JobState state);
const char* JobStateName(JobState state);

struct JobInfo {
  std::string id;
  JobState state = JobState::kWaiting;
  int priority = 0;
  int max_attempts = 0;
  int attempts = 0;
  int64_t epoch = 0;
  int stall_count = 0;
  absl::Duration timeout;
  std::string workspace;
  std::string worker;
  absl::Time created;
  // lease_expiry and deadline: only while the job is held (active or cancelling).
  std::optional<absl::Time> ready_since, lease_expiry, deadline, finished;
  std::string error_json;  // last error, {"message", "code", ...}
  std::string retry_of;
  std::string payload;
};

struct QueueStats {
  int64_t waiting = 0, active = 0, delayed = 0, completed = 0, failed = 0, cancelled = 0,
          timed_out = 0;
  absl::Duration oldest_waiting;  // age of the oldest ready job (0 when none)
};

struct HousekeepingResult {
  bool ran = false;  // false: another process holds this interval's housekeeping lease
  int64_t promoted = 0, requeued = 0, stall_failed = 0, timed_out = 0, cancelled = 0;
  // The executions this call ended, for the history store.
  std::vector<std::string> stall_failed_ids, timed_out_ids, cancelled_ids;
  // The run stopped at its batch with expired waiting jobs left: the lease now lapses after
  // housekeeping_follow_up, and the caller should run again then instead of after the interval.
  bool more = false;
};

class RedisQueue {
 public:
  // `pool` and `clock` must outlive the queue. With `scripts` (optional; must outlive the queue),
  // the scripts go through it, pipelined with other threads' (a process with many threads that
  // each wait for their own call: the worker's slots); other commands use `pool`.
  RedisQueue(redis::RedisPool& pool, QueueOptions options, common::Clock& clock,
             redis::RedisCoalescer* scripts = nullptr);

  const QueueOptions& options() const { return options_; }
  // "ndx:{<name>}:"
  const std::string& prefix() const { return prefix_; }
  // The Pub/Sub channel on which the id of an active job that is asked to cancel (or that timed
  // out) is published.
  std::string cancel_channel() const { return prefix_ + "cancel"; }

  // Enqueues jobs in one round trip; returns one result per job, in order. INVALID_ARGUMENT names
  // the field of the job that is wrong (id, priority, payload size, ...); RESOURCE_EXHAUSTED when
  // the queue would exceed max_depth (nothing is enqueued) or a payload exceeds max_payload_bytes.
  absl::StatusOr<std::vector<EnqueueResult>> Enqueue(absl::Span<const NewJob> jobs);

  // As Enqueue, but every job succeeds or fails on its own, for callers that send independent
  // requests together (ExecuteWorkflow's group commit): a job that fails CheckJob ("job: ...") or
  // would take the queue past max_depth (RESOURCE_EXHAUSTED) gets its own error, the others are
  // enqueued, in order (jobs with one idempotency key: the first gets a new id, the rest that id).
  // The outer status is the round trip's (UNAVAILABLE, ...): as for Enqueue, whether the script
  // ran is then unknown.
  absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> EnqueueEach(
      absl::Span<const NewJob> jobs);

  // The checks Enqueue makes of each job before it touches Redis (id, priority, payload size,
  // attempts, timeout, workspace), for callers that write elsewhere first: INVALID_ARGUMENT or
  // RESOURCE_EXHAUSTED, the message starting with "job" (or "job <index>" of a batch).
  absl::Status CheckJob(const NewJob& job, int index = -1) const;

  // Claims up to `max` ready jobs (after promoting due delayed jobs) for `worker`.
  absl::StatusOr<ClaimResult> Claim(const std::string& worker, int max);

  // Blocks on `connection` (a dedicated one: it is held for the whole wait) until a wake-up or
  // `timeout`, whichever is first. Returns OK either way; consumers Claim() after it regardless, so
  // a lost wake-up costs at most `timeout`. When `connection` is not connected (first use, or
  // Redis went away), it only reconnects and returns at once: wake-ups may have been missed, so
  // the caller should claim before blocking.
  absl::Status WaitForWork(redis::RedisConnection& connection, absl::Duration timeout);

  // Renews leases; one state per job: held, cancelling (stop it, then AckCancel), or lost (stop it
  // and write nothing).
  absl::StatusOr<std::vector<LeaseState>> Renew(absl::Span<const JobRef> jobs);

  // Records successful ends; one outcome per job. The second form also appends each job's
  // `completed` event in the same script (a `cancelled` event instead when a cancel won).
  absl::StatusOr<std::vector<CompleteOutcome>> Complete(absl::Span<const JobRef> jobs);
  absl::StatusOr<std::vector<CompleteOutcome>> Complete(absl::Span<const Completion> jobs);

  // Records a failed attempt: retried after a backoff when `transient` and attempts remain.
  // `error_json` is {"message", "code", "nodeId", ...}. With `events.append`, the `retrying`
  // (data: attempt, maxAttempts, delay ms, nextAttemptAt), `failed` or `cancelled` event is
  // appended in the same script.
  absl::StatusOr<FailOutcome> Fail(const JobRef& job, const std::string& error_json, bool transient,
                                   const FailEvents& events = {});

  // The holder begins running a claimed job: appends the execution's `started` event (once per
  // execution) and returns the checkpoints saved by earlier attempts.
  absl::StatusOr<StartResult> Start(const HeldJob& job, const std::string& started_event_json);

  // The holder reports a node run in one script guarded by its epoch (nothing is written when the
  // lease is lost): appends `events` (JSON without seq, in order; e.g. a node's node-started and
  // node-completed) and, unless `run_key` is "", saves `checkpoint_json` under it.
  // `checkpoints_have_ttl`: an earlier call of this holder saved a checkpoint, so the checkpoints'
  // hash has its TTL and the script need not check it (false: checks, and sets it when missing).
  // `token`: the holder's call token, "<epoch>:<n>" with n counting its calls for the job ("" =
  // none). Repeat an unanswered call with the SAME token (and arguments) before making the next:
  // a repeat of a call that took effect appends nothing and returns the first call's seq.
  absl::StatusOr<NodeEventResult> NodeEvent(const HeldJob& job,
                                            absl::Span<const std::string_view> events,
                                            std::string_view run_key,
                                            std::string_view checkpoint_json,
                                            bool checkpoints_have_ttl = false,
                                            std::string_view token = "");

  // Parks the job until `resume_at` (durable wait) without counting an attempt. Returns 1
  // parked, 2 cancelled instead, 0 rejected (stale epoch).
  absl::StatusOr<int> Suspend(const HeldJob& job, absl::Time resume_at);

  // Cancels: returns kCancelled (it was waiting or delayed, or was already cancelled) or
  // kCancelling (running: its holder is told). NOT_FOUND, FAILED_PRECONDITION (already ended).
  absl::StatusOr<JobState> Cancel(const std::string& id);

  // Deletes a finished job (completed, failed, timed out or cancelled): its record, checkpoints
  // and event log. NOT_FOUND (unknown or expired), FAILED_PRECONDITION (not finished).
  absl::Status Delete(const std::string& id);

  // The holder of a cancelling job has stopped it. Returns false when rejected (stale epoch).
  // `token` as for NodeEvent.
  absl::StatusOr<bool> AckCancel(const JobRef& job, std::string_view token = "");

  // Hands jobs back (graceful shutdown) without counting an attempt; they are ready at once.
  // One value per job: 1 released, 2 cancelled (it was cancelling), 0 rejected.
  absl::StatusOr<std::vector<int>> Release(absl::Span<const JobRef> jobs);

  // Promotes due delayed jobs, recovers lapsed leases, times out jobs past their deadline, sweeps
  // expired waiting jobs from the indexes. Runs only if this call wins the interval's
  // housekeeping lease (or `force`); each run looks at about housekeeping_batch entries of each
  // kind (a few ms of Redis at most), and says `more` when a backlog is left.
  absl::StatusOr<HousekeepingResult> Housekeep(const std::string& owner, bool force = false);

  absl::StatusOr<QueueStats> Stats();

  // With history_pending: the end of jobs `ids` is in the history now (written, or accepted by
  // the outbox): takes them off the unrecorded index and starts their completion TTL. Returns how
  // many were on it. Safe to repeat.
  absl::StatusOr<int> MarkRecorded(absl::Span<const std::string> ids);
  // The ids on the unrecorded index that ended at least `older_than` ago, oldest first, at most
  // `limit`.
  absl::StatusOr<std::vector<std::string>> Unrecorded(absl::Duration older_than, int limit);

  // The node-run checkpoints saved for execution `id` (run key -> checkpoint JSON).
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Checkpoints(
      const std::string& id);

  // The execution id an idempotency key points to, if any.
  absl::StatusOr<std::optional<std::string>> LookupIdempotency(const std::string& key);

  // The job's record. NOT_FOUND when unknown or expired.
  absl::StatusOr<JobInfo> Get(const std::string& id);

  // A new job `new_id` that resumes from the checkpoints of the failed, timed-out or cancelled job
  // `old_id`. NOT_FOUND, FAILED_PRECONDITION (not in such a state).
  absl::StatusOr<EnqueueResult> Retry(const std::string& old_id, const std::string& new_id,
                                      const std::string& idempotency_key);

 private:
  absl::StatusOr<redis::RedisReply> Run(const redis::RedisScript& script,
                                        const std::vector<std::string_view>& args);
  int64_t NowMs() const;
  // enqueue.lua for jobs already checked; `each`: over-depth jobs are refused one by one (code 2)
  // instead of the whole call. The reply has two elements per job.
  absl::StatusOr<redis::RedisReply> RunEnqueue(absl::Span<const NewJob* const> jobs, bool each);

  redis::RedisPool& pool_;
  redis::RedisCoalescer* const scripts_;
  const QueueOptions options_;
  common::Clock& clock_;
  const std::string prefix_;
};

// A new random execution id (UUID version 4, lower-case hex).
std::string NewExecutionId();

}  // namespace ndx::queue
