#include "services/worker/worker_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/engine/js/js_sandbox.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/workflow.h"
#include "libs/events/event_json.h"
#include "libs/service/history.h"

namespace ndx::worker {
namespace {

using engine::Json;

// Repeats a Redis call that failed for want of Redis (UNAVAILABLE, DEADLINE_EXCEEDED) for up to
// `budget`, so a blip does not cost an execution its progress. Only for calls that are safe to
// repeat (every holder-side script is: checkpoints are idempotent, stale epochs are rejected).
template <typename Fn>
auto Persist(Fn fn, absl::Duration budget, const engine::CancellationToken* stop = nullptr)
    -> decltype(fn()) {
  const absl::Time give_up = absl::Now() + budget;
  absl::Duration backoff = absl::Milliseconds(20);
  while (true) {
    auto r = fn();
    const absl::StatusCode code = r.status().code();
    if (r.ok() ||
        (code != absl::StatusCode::kUnavailable && code != absl::StatusCode::kDeadlineExceeded) ||
        absl::Now() + backoff > give_up || (stop != nullptr && stop->cancelled())) {
      return r;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
}

// Persist() for a history write (ExecutionStore returns a Status). History writes are idempotent
// (upserts, guarded transitions); one that finds Redis gone (the outbox check) happened nowhere,
// so without a retry a Redis restart cost the history a node run or an execution's end.
template <typename Fn>
absl::Status PersistHistory(Fn fn, absl::Duration budget) {
  return Persist(
             [&]() -> absl::StatusOr<bool> {
               NDX_RETURN_IF_ERROR(fn());
               return true;
             },
             budget)
      .status();
}

// The queue's options for a worker: with a history, the ends it makes wait on the queue's
// unrecorded index until their history write was accepted (QueueOptions::history_pending).
queue::QueueOptions QueueOptionsOf(const WorkerOptions& options) {
  queue::QueueOptions q = options.queue;
  if (options.store != nullptr) q.history_pending = true;
  return q;
}

std::string StrOr(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

// One execution being run: what the lease keeper and status need to know about it.
struct WorkerRunner::Run {
  queue::HeldJob held;
  engine::CancellationToken token;
  absl::Time started_at;
  absl::Time deadline = absl::InfiniteFuture();
  int attempt = 0;
  std::atomic<bool> lease_lost{false};
  std::atomic<bool> user_cancelled{false};
  std::atomic<bool> shutting_down{false};
  // Counts this holder's script calls for the job: each call's token is "<epoch>:<n>", and a call
  // repeated because its reply was lost keeps its token, so the script applies it once
  // (lua/node_event.lua).
  std::atomic<int64_t> calls{0};
  std::string NextToken() { return absl::StrCat(held.epoch, ":", ++calls); }
  absl::Mutex mu;
  std::string current_node_id ABSL_GUARDED_BY(mu);
  std::string current_node_name ABSL_GUARDED_BY(mu);
  // The run's node reports go out one at a time, from its slot thread or (a long node's
  // node-started) from the lease keeper. A node-started event waits here to be sent in one script
  // with the report that ends the node run (one round trip per node), unless the node is still
  // running after `WorkerOptions::started_event_delay`.
  absl::Mutex report_mu;
  std::string pending_started ABSL_GUARDED_BY(report_mu);  // "" = none
  absl::Time pending_since ABSL_GUARDED_BY(report_mu);
  bool checkpoint_saved ABSL_GUARDED_BY(report_mu) = false;  // the checkpoints' hash has its TTL
  // The token of the lease keeper's lone node-started call (FlushLongStarted) when it got no reply
  // (it may or may not have been applied): the next report repeats that call, same token, first.
  std::string unanswered_token ABSL_GUARDED_BY(report_mu);
};

namespace {

// Acts on the lease state a holder-side script returned: a lost lease or a cancel stops the run.
absl::Status ApplyLease(WorkerRunner::Run& run, queue::LeaseState lease) {
  if (lease == queue::LeaseState::kLost) {
    run.lease_lost = true;
    run.token.Cancel(absl::AbortedError("lease lost: another worker owns this execution now"));
    return absl::AbortedError("lease lost");
  }
  if (lease == queue::LeaseState::kCancelling) {
    run.user_cancelled = true;
    run.token.Cancel(absl::CancelledError("execution cancelled"));
  }
  return absl::OkStatus();
}

// Sends a node report of `run` in one script: its pending node-started event (if any), then
// `event` ("" = none), and the checkpoint `checkpoint` under `key` ("" = none). Retries while
// Redis is unreachable for up to `budget`; when it stays unreachable the run stops (its lease
// lapses and another attempt resumes from the checkpoints that were saved).
absl::Status Report(queue::RedisQueue& queue, WorkerRunner::Run& run, std::string_view event,
                    std::string_view key, std::string_view checkpoint, absl::Duration budget) {
  absl::MutexLock lock(&run.report_mu);
  auto stop = [&run](const absl::Status& s) {
    run.token.Cancel(
        absl::AbortedError(absl::StrCat("stopped: progress could not be saved: ", s.message())));
    run.lease_lost = true;
    return s;
  };
  if (!run.unanswered_token.empty()) {
    // The lease keeper's node-started call got no reply: repeat it as it was (its token makes a
    // repeat of an applied call append nothing), so that it is neither lost nor sent twice.
    const std::string_view started = run.pending_started;
    absl::StatusOr<queue::NodeEventResult> r = Persist(
        [&] {
          return queue.NodeEvent(run.held, absl::MakeConstSpan(&started, 1), "", "", false,
                                 run.unanswered_token);
        },
        budget, &run.token);
    run.unanswered_token.clear();
    run.pending_started.clear();
    if (!r.ok()) return stop(r.status());
    NDX_RETURN_IF_ERROR(ApplyLease(run, r->lease));
  }
  std::string_view events[2];
  size_t n = 0;
  if (!run.pending_started.empty()) events[n++] = run.pending_started;
  if (!event.empty()) events[n++] = event;
  if (n == 0 && key.empty()) return absl::OkStatus();
  const std::string call_token = run.NextToken();  // the same for every repeat below
  absl::StatusOr<queue::NodeEventResult> r = Persist(
      [&] {
        return queue.NodeEvent(run.held, absl::MakeConstSpan(events, n), key, checkpoint,
                               run.checkpoint_saved, call_token);
      },
      budget, &run.token);
  run.pending_started.clear();  // sent, or the run stops here and sends nothing more
  if (!r.ok()) return stop(r.status());
  if (!key.empty() && r->lease != queue::LeaseState::kLost) run.checkpoint_saved = true;
  return ApplyLease(run, r->lease);
}

// The lease keeper sends the node-started event of a node that has been running for `after` on
// its own, so that clients see it while the node runs. One attempt, and never waiting for the
// slot: on failure the event stays pending and goes with the node's next report. Called by the
// lease keeper just before it renews the run's lease.
void FlushLongStarted(queue::RedisQueue& queue, WorkerRunner::Run& run, absl::Duration after) {
  if (!run.report_mu.TryLock()) return;  // the slot is reporting right now
  if (!run.pending_started.empty() && !run.lease_lost && absl::Now() - run.pending_since >= after) {
    const std::string_view event = run.pending_started;
    // A call that got no reply before is repeated with its token (see Run::unanswered_token).
    const std::string call_token =
        run.unanswered_token.empty() ? run.NextToken() : run.unanswered_token;
    absl::StatusOr<queue::NodeEventResult> r =
        queue.NodeEvent(run.held, absl::MakeConstSpan(&event, 1), "", "", false, call_token);
    // A lost lease or a cancel is acted on by the renewal that follows in the same round.
    if (r.ok()) {
      run.pending_started.clear();
      run.unanswered_token.clear();
    } else {
      run.unanswered_token = call_token;
    }
  }
  run.report_mu.Unlock();
}

// Turns the engine's reports into checkpoints and events, each one script guarded by the epoch.
class Observer final : public engine::ExecutionObserver {
 public:
  Observer(queue::RedisQueue& queue, WorkerRunner::Run& run, size_t max_output,
           absl::Duration persist_budget,
           std::function<void(const std::string&, const std::string&)> set_current,
           WorkerMetrics* metrics, store::ExecutionStore* history)
      : queue_(queue),
        run_(run),
        max_output_(max_output),
        budget_(persist_budget),
        set_current_(std::move(set_current)),
        metrics_(metrics),
        history_(history) {}

  // node-started waits for the report that ends the run (Report), or for the lease keeper when
  // the node takes long (FlushLongStarted).
  void OnNodeStarted(const engine::NodeRun& run) override {
    set_current_(run.node->id, run.node->name);
    events::Event e = Base(events::kNodeStarted, run);
    if (run.iteration >= 0) e.data = {{"iteration", run.iteration}};
    std::string json = events::ToJson(e);
    absl::MutexLock lock(&run_.report_mu);
    run_.pending_started = std::move(json);
    run_.pending_since = absl::Now();
  }

  absl::Status OnNodeCompleted(const engine::NodeRun& run, const Json& checkpoint,
                               const Json& output, absl::Duration duration,
                               const Json& active_connections) override {
    events::Event e = Base(events::kNodeCompleted, run);
    e.data = {{"outputData", output},
              {"duration", absl::ToInt64Milliseconds(duration)},
              {"activeConnections", active_connections}};
    if (run.iteration >= 0) e.data["iteration"] = run.iteration;
    if (metrics_ != nullptr) metrics_->NodeRun(run.node->type, "completed", duration);
    NDX_RETURN_IF_ERROR(Send(events::ToJson(e, max_output_), run.key, checkpoint.dump()));
    return Record(run, store::NodeStatus::kSuccess, &output, "", duration);
  }

  absl::Status OnNodeSkipped(const engine::NodeRun& run, absl::string_view reason,
                             const Json& checkpoint) override {
    events::Event e = Base(events::kNodeSkipped, run);
    e.data = {{"reason", std::string(reason)}};
    NDX_RETURN_IF_ERROR(Send(events::ToJson(e), run.key, checkpoint.dump()));
    return Record(run, store::NodeStatus::kSkipped, nullptr, "", absl::ZeroDuration());
  }

  void OnNodeFailed(const engine::NodeRun& run, const absl::Status& error,
                    absl::Duration duration) override {
    events::Event e = Base(events::kNodeFailed, run);
    const Json err = engine::NodeErrorJson(*run.node, error);
    e.error = events::EventError{err.value("message", ""), err.value("code", ""), run.node->id};
    e.data = {{"duration", absl::ToInt64Milliseconds(duration)}, {"error", err}};
    if (metrics_ != nullptr) metrics_->NodeRun(run.node->type, "failed", duration);
    if (Send(events::ToJson(e), "", "").ok()) {
      (void)Record(run, store::NodeStatus::kError, nullptr, err.dump(), duration);
    }
  }

  void OnNodeRetrying(const engine::NodeRun& run, int attempt, absl::Duration delay,
                      const absl::Status& error) override {
    events::Event e = Base(events::kRetrying, run);
    e.data = {{"attempt", attempt}, {"delay", absl::ToInt64Milliseconds(delay)}, {"scope", "node"}};
    e.error = events::EventError{std::string(error.message()),
                                 absl::StatusCodeToString(error.code()), run.node->id};
    (void)Send(events::ToJson(e), "", "");
  }

  absl::Status OnNodeSuspended(const engine::NodeRun& run, const Json& checkpoint,
                               absl::Time resume_at) override {
    return Send("", run.key, checkpoint.dump());
  }

 private:
  events::Event Base(absl::string_view type, const engine::NodeRun& run) const {
    events::Event e;
    e.type = std::string(type);
    e.execution_id = run_.held.id;
    e.workflow_id = run_.held.workflow_id;
    e.timestamp = absl::Now();
    e.node_id = run.node->id;
    e.node_name = run.node->name;
    e.node_type = run.node->type;
    return e;
  }

  // Writes the node run to the history (after Redis). A stale epoch stops the run.
  // (`output` is serialized only when there is a history to write.)
  absl::Status Record(const engine::NodeRun& run, store::NodeStatus status, const Json* output,
                      const std::string& error, absl::Duration duration) {
    if (history_ == nullptr) return absl::OkStatus();
    const absl::Time now = absl::Now();
    const store::NodeRun record = {.execution_id = run_.held.id,
                                   .epoch = run_.held.epoch,
                                   .run_key = run.key,
                                   .node_id = run.node->id,
                                   .node_name = run.node->name,
                                   .node_type = run.node->type,
                                   .status = status,
                                   .attempt = run_.attempt,
                                   .run_index = std::max(run.iteration, 0),
                                   .output_json = output ? output->dump() : "",
                                   .error_json = error,
                                   .started_at = now - duration,
                                   .finished_at = now};
    const absl::Status s = PersistHistory([&] { return history_->RecordNodeRun(record); }, budget_);
    if (store::IsStaleEpoch(s)) {
      run_.lease_lost = true;
      run_.token.Cancel(absl::AbortedError("lease lost (the history has a newer attempt)"));
      return s;
    }
    if (!s.ok())
      log::Warn("history: node run not recorded", {{"execution", run_.held.id}, {"error", s}});
    return absl::OkStatus();
  }

  absl::Status Send(const std::string& event, const std::string& key,
                    const std::string& checkpoint) {
    return Report(queue_, run_, event, key, checkpoint, budget_);
  }

  queue::RedisQueue& queue_;
  WorkerRunner::Run& run_;
  const size_t max_output_;
  const absl::Duration budget_;
  std::function<void(const std::string&, const std::string&)> set_current_;
  WorkerMetrics* metrics_;
  store::ExecutionStore* history_;
};

}  // namespace

WorkerRunner::WorkerRunner(redis::RedisPool& pool, redis::RedisOptions blocking,
                           WorkerOptions options, common::Clock& clock)
    : pool_(pool),
      blocking_options_(std::move(blocking)),
      options_(std::move(options)),
      clock_(clock),
      scripts_(blocking_options_, clock),
      queue_(pool, QueueOptionsOf(options_), clock, &scripts_),
      engine_(options_.engine) {
  engine::RegisterBuiltinNodes(registry_);
  absl::MutexLock lock(&mu_);
  counters_.slots_total = options_.slots;
}

WorkerRunner::~WorkerRunner() { Shutdown(absl::ZeroDuration()); }

void WorkerRunner::Start() {
  threads_.emplace_back([this] { FetchLoop(); });
  for (int i = 0; i < options_.slots; ++i) threads_.emplace_back([this, i] { SlotLoop(i); });
  threads_.emplace_back([this] { WatchLoop(); });
  threads_.emplace_back([this] { HousekeepLoop(); });
}

void WorkerRunner::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  counters_.draining = true;
}

std::vector<std::string> WorkerRunner::Shutdown(absl::Duration grace) {
  Drain();
  std::vector<std::string> released;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return released;
    // Claimed but not started: hand back at once.
    std::vector<queue::JobRef> refs;
    for (const queue::ClaimedJob& j : ready_) refs.push_back({j.id, j.epoch});
    busy_ -= static_cast<int>(ready_.size());
    ready_.clear();
    if (!refs.empty()) {
      mu_.Unlock();
      if (queue_.Release(refs).ok()) {
        for (const auto& r : refs) released.push_back(r.id);
      }
      mu_.Lock();
    }
    const auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return busy_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) {
      // Grace is over: stop what still runs; each run hands its job back (Release).
      for (auto& [id, run] : running_) {
        run->shutting_down = true;
        run->token.Cancel(absl::CancelledError("worker shutting down"));
        released.push_back(id);
      }
      mu_.Await(absl::Condition(&idle));
    }
    stopping_ = true;
    counters_.drained = true;
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  return released;
}

WorkerSnapshot WorkerRunner::Snapshot() const {
  absl::MutexLock lock(&mu_);
  WorkerSnapshot s = counters_;
  for (const auto& [id, run] : running_) {
    WorkerSnapshot::Running r;
    r.execution_id = id;
    r.workflow_id = run->held.workflow_id;
    r.workspace_id = run->held.workspace;
    r.started_at = run->started_at;
    r.deadline = run->deadline;
    r.attempt = run->attempt;
    r.epoch = run->held.epoch;
    absl::MutexLock run_lock(&run->mu);
    r.current_node_id = run->current_node_id;
    r.current_node_name = run->current_node_name;
    s.running.push_back(std::move(r));
  }
  return s;
}

absl::Status WorkerRunner::CheckNotWedged() {
  int free;
  absl::Time last_claim;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return absl::OkStatus();
    free = options_.slots - busy_;
    last_claim = counters_.last_claim_at;
  }
  if (free <= 0 || clock_.Now() - last_claim < options_.wedged_after) return absl::OkStatus();
  absl::StatusOr<queue::QueueStats> stats = queue_.Stats();
  if (!stats.ok()) return stats.status();
  if (stats->waiting == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(stats->waiting, " executions are waiting and ", free,
                   " slots are free, but this worker has not claimed anything for ",
                   absl::FormatDuration(clock_.Now() - last_claim)));
}

void WorkerRunner::FetchLoop() {
  redis::RedisConnection blocking(blocking_options_);
  absl::Duration error_backoff = absl::Milliseconds(50);
  {
    // Counts as a claim, so a fresh worker is not reported wedged before it tried.
    absl::MutexLock lock(&mu_);
    counters_.last_claim_at = clock_.Now();
  }
  while (true) {
    int free;
    {
      absl::MutexLock lock(&mu_);
      const auto can_claim = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return draining_ || stopping_ || busy_ < options_.slots;
      };
      mu_.AwaitWithTimeout(absl::Condition(&can_claim), absl::Seconds(1));
      if (draining_ || stopping_) return;
      free = options_.slots - busy_;
      if (free <= 0) {
        counters_.last_claim_at = clock_.Now();  // busy is not wedged
        continue;
      }
    }
    absl::StatusOr<queue::ClaimResult> claim = queue_.Claim(options_.worker_id, free);
    if (!claim.ok()) {
      log::Debug("claim failed", {{"error", claim.status()}});
      absl::SleepFor(error_backoff);
      error_backoff = std::min(error_backoff * 2, absl::Seconds(1));
      continue;
    }
    error_backoff = absl::Milliseconds(50);
    if (!claim->jobs.empty()) {
      if (options_.metrics != nullptr) {
        options_.metrics->Claimed(static_cast<int>(claim->jobs.size()), absl::ZeroDuration());
        for (const queue::ClaimedJob& j : claim->jobs) {
          options_.metrics->QueueWait(clock_.Now() - j.ready_since);
        }
      }
      absl::MutexLock lock(&mu_);
      counters_.last_claim_at = clock_.Now();
      for (queue::ClaimedJob& j : claim->jobs) ready_.push_back(std::move(j));
      busy_ += static_cast<int>(claim->jobs.size());
      if (options_.metrics != nullptr) options_.metrics->SetSlots(busy_, options_.slots);
      continue;
    }
    // Nothing ready: block for a wake-up, at most 1 s (or until the next delayed job is due).
    absl::Duration wait = absl::Seconds(1);
    if (claim->next_due) wait = std::min(wait, *claim->next_due - clock_.Now());
    wait = std::max(wait, absl::Milliseconds(10));
    if (!queue_.WaitForWork(blocking, wait).ok()) absl::SleepFor(absl::Milliseconds(50));
  }
}

void WorkerRunner::SlotLoop(int index) {
  std::unique_ptr<engine::JsSandbox> js;
  absl::StatusOr<std::unique_ptr<engine::JsSandbox>> created =
      engine::JsSandbox::Create(options_.engine.js_limits);
  if (created.ok()) {
    js = *std::move(created);
  } else {
    log::Error("JavaScript unavailable on a slot", {{"slot", index}, {"error", created.status()}});
  }
  while (true) {
    queue::ClaimedJob job;
    {
      absl::MutexLock lock(&mu_);
      const auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !ready_.empty();
      };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_ && ready_.empty()) return;
      job = std::move(ready_.front());
      ready_.pop_front();
    }
    Execute(job, js.get());
    absl::MutexLock lock(&mu_);
    busy_--;
    if (options_.metrics != nullptr) options_.metrics->SetSlots(busy_, options_.slots);
  }
}

void WorkerRunner::WatchLoop() {
  while (true) {
    std::vector<std::shared_ptr<Run>> runs;
    {
      absl::MutexLock lock(&mu_);
      const auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.watch_interval)) return;
      for (auto& [id, run] : running_) runs.push_back(run);
    }
    if (runs.empty()) continue;
    for (const auto& r : runs) FlushLongStarted(queue_, *r, options_.started_event_delay);
    std::vector<queue::JobRef> refs;
    for (const auto& r : runs) refs.push_back({r->held.id, r->held.epoch});
    absl::StatusOr<std::vector<queue::LeaseState>> states = queue_.Renew(refs);
    absl::MutexLock lock(&mu_);
    if (!states.ok()) {
      counters_.failed_renewals++;
      counters_.consecutive_failed_renewals++;
      continue;
    }
    counters_.consecutive_failed_renewals = 0;
    counters_.last_renewal_at = clock_.Now();
    for (size_t i = 0; i < runs.size(); ++i) {
      Run& run = *runs[i];
      if ((*states)[i] == queue::LeaseState::kLost && !run.lease_lost.exchange(true)) {
        counters_.leases_lost++;
        if (options_.metrics != nullptr) options_.metrics->LeaseLost();
        run.token.Cancel(absl::AbortedError("lease lost: another worker owns this execution now"));
      } else if ((*states)[i] == queue::LeaseState::kCancelling) {
        run.user_cancelled = true;
        run.token.Cancel(absl::CancelledError("execution cancelled"));
      }
    }
  }
}

void WorkerRunner::HousekeepLoop() {
  bool more = false;  // the last run stopped at its batch with a backlog left: run again soon
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop),
                               more ? options_.queue.housekeeping_follow_up
                                    : options_.queue.housekeeping_interval)) {
        return;
      }
    }
    absl::StatusOr<queue::HousekeepingResult> r = queue_.Housekeep(options_.worker_id);
    more = r.ok() && r->more;
    if (r.ok() && r->ran && options_.store != nullptr) {
      std::vector<std::string> ended = r->stall_failed_ids;
      ended.insert(ended.end(), r->timed_out_ids.begin(), r->timed_out_ids.end());
      ended.insert(ended.end(), r->cancelled_ids.begin(), r->cancelled_ids.end());
      if (!ended.empty()) service::RecordEnds(queue_, *options_.store, ended);
      service::RecordUnrecorded(queue_, *options_.store);
    }
    if (r.ok() && r->requeued + r->stall_failed + r->timed_out > 0) {
      log::Info("housekeeping", {{"requeued_stalled", r->requeued},
                                 {"failed_stalled", r->stall_failed},
                                 {"timed_out", r->timed_out}});
    }
  }
}

void WorkerRunner::Execute(const queue::ClaimedJob& job, engine::JsSandbox* js) {
  auto run = std::make_shared<Run>();
  run->started_at = clock_.Now();
  run->attempt = job.attempt;
  run->held.id = job.id;
  run->held.epoch = job.epoch;
  const Json payload = Json::parse(job.payload, nullptr, /*allow_exceptions=*/false);
  if (payload.is_object()) {
    run->held.workflow_id = StrOr(payload, "workflowId");
    run->held.workspace = StrOr(payload, "workspaceId");
  }
  const queue::FailEvents fail_events{.append = true, .workflow_id = run->held.workflow_id};
  const absl::Duration persist = options_.queue.lease;
  // An end this worker made in Redis, recorded from Redis (service::RecordEndFromQueue) on the
  // rare paths that have no history write of their own (a permanent failure before the run, a
  // cancel found at start, a cancel that won a hand-back or a durable wait). A failure leaves it
  // on the unrecorded index for housekeeping.
  auto record_from_redis = [&] {
    if (options_.store != nullptr) service::RecordEnds(queue_, *options_.store, {job.id});
  };
  auto fail_permanently = [&](const absl::Status& error) {
    const Json err = {{"message", std::string(error.message())},
                      {"code", absl::StatusCodeToString(error.code())},
                      {"transient", false}};
    queue::FailEvents events = fail_events;
    events.token = run->NextToken();
    absl::StatusOr<queue::FailOutcome> r = Persist(
        [&] {
          return queue_.Fail({job.id, job.epoch}, err.dump(), false, events);
        },
        persist);
    if (r.ok() && r->kind != queue::FailOutcome::Kind::kRejected) record_from_redis();
    absl::MutexLock lock(&mu_);
    counters_.failed++;
  };
  if (!payload.is_object() || !payload.contains("workflow")) {
    return fail_permanently(absl::InvalidArgumentError("job data is not an ndx job payload"));
  }
  absl::StatusOr<engine::Workflow> workflow = engine::ParseWorkflow(payload["workflow"], registry_);
  if (!workflow.ok()) return fail_permanently(workflow.status());

  run->deadline = engine::ExecutionDeadline(
      *workflow, run->started_at,
      job.timeout > absl::ZeroDuration() ? job.timeout : absl::InfiniteDuration());
  {
    absl::MutexLock lock(&mu_);
    running_[job.id] = run;
  }
  auto forget = [&] {
    absl::MutexLock lock(&mu_);
    running_.erase(job.id);
  };

  events::Event started{.type = std::string(events::kStarted),
                        .execution_id = job.id,
                        .workflow_id = run->held.workflow_id,
                        .timestamp = absl::Now()};
  started.data = {{"attempt", job.attempt}, {"workerId", options_.worker_id}};
  absl::StatusOr<queue::StartResult> start = Persist(
      [&] { return queue_.Start(run->held, events::ToJson(started)); }, persist, &run->token);
  if (!start.ok() || start->lease == queue::LeaseState::kLost) {
    // Redis is gone or the job is someone else's: leave it; its lease lapses and it is recovered.
    return forget();
  }
  if (start->lease == queue::LeaseState::kCancelling) {
    const std::string token = run->NextToken();
    absl::StatusOr<bool> acked = Persist(
        [&] {
          return queue_.AckCancel({job.id, job.epoch}, token);
        },
        persist);
    if (acked.ok() && *acked) record_from_redis();
    return forget();
  }

  // The history, unless the workflow opts out (saveExecutionToDatabase: false).
  store::ExecutionStore* history =
      options_.store != nullptr && service::SaveToHistoryParsed(payload) ? options_.store : nullptr;
  if (history != nullptr) {
    const absl::Status s = PersistHistory(
        [&] {
          return history->StartAttempt({.execution_id = job.id,
                                        .epoch = job.epoch,
                                        .attempt = job.attempt,
                                        .worker_id = options_.worker_id,
                                        .claimed_at = run->started_at});
        },
        persist);
    if (store::IsStaleEpoch(s)) return forget();
    if (!s.ok()) log::Warn("history: attempt not recorded", {{"execution", job.id}, {"error", s}});
  }
  if (history != nullptr && !start->checkpoints.empty()) {
    // A resumed execution: make sure the history has every run an earlier attempt checkpointed (a
    // worker killed between its Redis checkpoint and its history write left none). Upserts: runs
    // already recorded are unchanged.
    std::vector<store::NodeRun> runs;
    for (const auto& [key, value] : start->checkpoints) {
      const Json cp = Json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (!cp.is_object()) continue;
      const std::string status = cp.value("status", "");
      if (status != "completed" && status != "skipped") continue;
      const std::string node_id = key.substr(0, key.find_first_of("@#"));
      const engine::Node* node = workflow->FindNode(node_id);
      if (node == nullptr) continue;
      store::NodeRun r;
      r.execution_id = job.id;
      r.epoch = job.epoch;
      r.run_key = key;
      r.node_id = node->id;
      r.node_name = node->name;
      r.node_type = node->type;
      r.status = status == "completed" ? store::NodeStatus::kSuccess : store::NodeStatus::kSkipped;
      r.attempt = job.attempt;
      if (cp.contains("output")) r.output_json = cp["output"].dump();
      r.finished_at = run->started_at;
      runs.push_back(std::move(r));
    }
    const absl::Status s = PersistHistory([&] { return history->RecordNodeRuns(runs); }, persist);
    if (store::IsStaleEpoch(s)) return forget();
    if (!s.ok())
      log::Warn("history: resumed runs not recorded", {{"execution", job.id}, {"error", s}});
  }
  // After an end in Redis: the history's end write, then (once it was accepted: written, or
  // queued in the outbox) the queue is told, which starts the completion TTL of the execution's
  // keys. Until then the end waits on the queue's unrecorded index, where housekeeping finds it
  // if this worker dies or the write fails (QueueOptions::history_pending).
  auto finish_history = [&](store::ExecutionStatus status, const std::string& error) {
    if (history != nullptr) {
      const absl::Time finished_at = clock_.Now();
      const absl::Status s = PersistHistory(
          [&] {
            return history->FinishExecution({.execution_id = job.id,
                                             .epoch = job.epoch,
                                             .status = status,
                                             .error_json = error,
                                             .finished_at = finished_at});
          },
          persist);
      if (!s.ok() && !absl::IsFailedPrecondition(s)) {
        log::Warn("history: end not recorded yet (housekeeping records it)",
                  {{"execution", job.id}, {"error", s}});
        return;
      }
    }
    if (!queue_.options().history_pending) return;
    const std::string id = job.id;
    absl::StatusOr<int> marked =
        Persist([&] { return queue_.MarkRecorded(absl::MakeConstSpan(&id, 1)); }, persist);
    if (!marked.ok()) {
      log::Debug("history: end recorded but not marked (housekeeping marks it)",
                 {{"execution", job.id}, {"error", marked.status()}});
    }
  };

  engine::RunRequest request;
  request.workflow = &*workflow;
  request.trigger_node_id = StrOr(payload, "triggerNodeId");
  if (payload.contains("triggerData")) request.trigger_data = payload["triggerData"];
  request.execution = {.execution_id = job.id, .workflow_id = run->held.workflow_id};
  for (auto& [key, value] : start->checkpoints) {
    Json cp = Json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!cp.is_discarded()) request.checkpoints[key] = std::move(cp);
  }
  request.cancel = &run->token;
  request.deadline = run->deadline;
  request.js = js;
  request.http = &http_;
  request.clock = &clock_;

  Observer observer(
      queue_, *run, options_.max_event_output_bytes, persist,
      [run](const std::string& id, const std::string& name) {
        absl::MutexLock lock(&run->mu);
        run->current_node_id = id;
        run->current_node_name = name;
      },
      options_.metrics, history);
  std::string outcome = "completed";
  const engine::RunResult result = engine_.Run(request, observer);
  const queue::JobRef ref{job.id, job.epoch};
  // A run interrupted inside a node (cancel, timeout) has not sent that node's node-started yet:
  // it goes before the execution's end event. A hand-back (shutdown) drops it: the node runs
  // again elsewhere and reports its start there.
  if (!run->lease_lost && !(run->shutting_down && !run->user_cancelled)) {
    (void)Report(queue_, *run, "", "", "", persist);
  }

  switch (result.outcome) {
    case engine::RunOutcome::kCompleted: {
      events::Event done{.type = std::string(events::kCompleted),
                         .execution_id = job.id,
                         .workflow_id = run->held.workflow_id,
                         .timestamp = absl::Now()};
      done.data = {{"duration", absl::ToInt64Milliseconds(clock_.Now() - run->started_at)}};
      const queue::Completion c{job.id,
                                job.epoch,
                                run->held.workflow_id,
                                run->held.workspace,
                                events::ToJson(done),
                                run->NextToken()};
      absl::StatusOr<std::vector<queue::CompleteOutcome>> r =
          Persist([&] { return queue_.Complete(absl::MakeConstSpan(&c, 1)); }, persist);
      if (r.ok() && (*r)[0] == queue::CompleteOutcome::kCancelled) outcome = "cancelled";
      if (r.ok() && (*r)[0] == queue::CompleteOutcome::kCompleted) {
        finish_history(store::ExecutionStatus::kSuccess, "");
      } else if (r.ok() && (*r)[0] == queue::CompleteOutcome::kCancelled) {
        finish_history(store::ExecutionStatus::kCancelled, "");
      }
      absl::MutexLock lock(&mu_);
      if (r.ok() && (*r)[0] == queue::CompleteOutcome::kCompleted) counters_.processed++;
      break;
    }
    case engine::RunOutcome::kFailed: {
      Json err = Json::object();
      if (const engine::Node* node = workflow->FindNode(result.failed_node_id)) {
        err = engine::NodeErrorJson(*node, result.error);
      } else {
        err = {{"message", std::string(result.error.message())},
               {"code", absl::StatusCodeToString(result.error.code())}};
      }
      err["transient"] = result.transient;
      queue::FailEvents events = fail_events;
      events.token = run->NextToken();
      absl::StatusOr<queue::FailOutcome> r =
          Persist([&] { return queue_.Fail(ref, err.dump(), result.transient, events); }, persist);
      outcome = r.ok() && r->kind == queue::FailOutcome::Kind::kRetrying ? "retrying" : "failed";
      if (r.ok() && r->kind == queue::FailOutcome::Kind::kFailed) {
        finish_history(store::ExecutionStatus::kError, err.dump());
      } else if (r.ok() && r->kind == queue::FailOutcome::Kind::kCancelled) {
        finish_history(store::ExecutionStatus::kCancelled, "");
      }
      absl::MutexLock lock(&mu_);
      if (r.ok() && r->kind == queue::FailOutcome::Kind::kRetrying) counters_.retried++;
      if (r.ok() && r->kind == queue::FailOutcome::Kind::kFailed) counters_.failed++;
      break;
    }
    case engine::RunOutcome::kTimedOut: {
      Json err = {{"message",
                   absl::StrCat("execution exceeded its timeout",
                                result.failed_node_id.empty()
                                    ? std::string()
                                    : absl::StrCat(" while running node ", result.failed_node_id))},
                  {"code", "EXECUTION_TIMEOUT"},
                  {"nodeId", result.failed_node_id}};
      queue::FailEvents events = fail_events;
      events.timed_out = true;
      events.token = run->NextToken();
      absl::StatusOr<queue::FailOutcome> r =
          Persist([&] { return queue_.Fail(ref, err.dump(), false, events); }, persist);
      if (r.ok() && r->kind == queue::FailOutcome::Kind::kTimedOut) {
        finish_history(store::ExecutionStatus::kTimeout, err.dump());
      }
      outcome = "timed_out";
      absl::MutexLock lock(&mu_);
      counters_.failed++;
      break;
    }
    case engine::RunOutcome::kSuspended: {
      absl::StatusOr<int> r =
          Persist([&] { return queue_.Suspend(run->held, result.resume_at); }, persist);
      if (r.ok() && *r == 2) record_from_redis();  // a cancel won
      outcome = "suspended";
      break;
    }
    case engine::RunOutcome::kCancelled:
    case engine::RunOutcome::kStopped:
      if (run->lease_lost) {
        outcome = "lease_lost";  // someone else owns it now: write nothing
        break;
      }
      if (run->shutting_down && !run->user_cancelled) {
        absl::StatusOr<std::vector<int>> r =
            Persist([&] { return queue_.Release(absl::MakeConstSpan(&ref, 1)); }, persist);
        if (r.ok() && (*r)[0] == 2) record_from_redis();  // a cancel won
        outcome = "released";
      } else if (run->user_cancelled) {
        const std::string token = run->NextToken();
        absl::StatusOr<bool> acked = Persist([&] { return queue_.AckCancel(ref, token); }, persist);
        if (acked.ok() && *acked) finish_history(store::ExecutionStatus::kCancelled, "");
        outcome = "cancelled";
      }
      break;
  }
  if (options_.metrics != nullptr) {
    options_.metrics->Finished(outcome, clock_.Now() - run->started_at);
  }
  forget();
}

}  // namespace ndx::worker
