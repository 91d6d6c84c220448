#include "libs/queue/redis_queue.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "libs/common/status_macros.h"
#include "libs/queue/lua_scripts.h"

namespace ndx::queue {
namespace {

using redis::RedisReply;
using redis::RedisScript;

// The scripts, loaded lazily per connection by SHA (RedisScript is thread-safe). Never destroyed.
struct Scripts {
  RedisScript enqueue{lua::k_enqueue};
  RedisScript claim{lua::k_claim};
  RedisScript renew{lua::k_renew};
  RedisScript complete{lua::k_complete};
  RedisScript fail{lua::k_fail};
  RedisScript cancel{lua::k_cancel};
  RedisScript ack_cancel{lua::k_ack_cancel};
  RedisScript release{lua::k_release};
  RedisScript housekeep{lua::k_housekeep};
  RedisScript stats{lua::k_stats};
  RedisScript retry{lua::k_retry};
  RedisScript start{lua::k_start};
  RedisScript node_event{lua::k_node_event};
  RedisScript suspend{lua::k_suspend};
  RedisScript del{lua::k_delete};
  RedisScript recorded{lua::k_recorded};
};

const Scripts& S() {
  static const Scripts* scripts = new Scripts();
  return *scripts;
}

constexpr absl::Duration kAcquireTimeout = absl::Seconds(2);

int64_t ToMs(absl::Duration d) { return absl::ToInt64Milliseconds(d); }
int64_t ToMs(absl::Time t) { return absl::ToUnixMillis(t); }

absl::Status Malformed(absl::string_view what, const RedisReply& reply) {
  return absl::InternalError(
      absl::StrCat("unexpected reply from the queue's ", what, " script: ", reply.DebugString()));
}

absl::StatusOr<int64_t> IntAt(const RedisReply& array, size_t i) {
  if (!array.is_array() || i >= array.elements().size()) {
    return absl::InternalError("queue script reply too short");
  }
  const RedisReply& e = array.elements()[i];
  if (e.is_integer()) return e.integer();
  int64_t v = 0;
  if (e.is_string() && absl::SimpleAtoi(e.str(), &v)) return v;
  return absl::InternalError(absl::StrCat("queue script reply: not an integer: ", e.DebugString()));
}

JobState StateFromCode(absl::string_view st) {
  if (st == "w") return JobState::kWaiting;
  if (st == "d") return JobState::kDelayed;
  if (st == "a") return JobState::kActive;
  if (st == "k") return JobState::kCancelling;
  if (st == "c") return JobState::kCompleted;
  if (st == "f") return JobState::kFailed;
  if (st == "t") return JobState::kTimedOut;
  return JobState::kCancelled;
}

bool IsQueueName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// Ids go into key names and Lua patterns: keep them to a safe alphabet.
bool IsId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

std::optional<absl::Time> OptionalMs(const std::optional<std::string>& v) {
  int64_t ms = 0;
  if (!v || !absl::SimpleAtoi(*v, &ms)) return std::nullopt;
  return absl::FromUnixMillis(ms);
}

}  // namespace

bool IsTerminal(JobState state) {
  return state == JobState::kCompleted || state == JobState::kFailed ||
         state == JobState::kTimedOut || state == JobState::kCancelled;
}

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kWaiting:
      return "waiting";
    case JobState::kDelayed:
      return "delayed";
    case JobState::kActive:
      return "active";
    case JobState::kCancelling:
      return "cancelling";
    case JobState::kCompleted:
      return "completed";
    case JobState::kFailed:
      return "failed";
    case JobState::kTimedOut:
      return "timed out";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string NewExecutionId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = rng();
  // Version 4, variant 10.
  const uint64_t hi = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  const uint64_t lo = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF,
                         lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

RedisQueue::RedisQueue(redis::RedisPool& pool, QueueOptions options, common::Clock& clock,
                       redis::RedisCoalescer* scripts)
    : pool_(pool),
      scripts_(scripts),
      options_(std::move(options)),
      clock_(clock),
      prefix_(absl::StrCat("ndx:{", options_.name, "}:")) {}

int64_t RedisQueue::NowMs() const { return ToMs(clock_.Now()); }

absl::StatusOr<RedisReply> RedisQueue::Run(const RedisScript& script,
                                           const std::vector<std::string_view>& args) {
  if (!IsQueueName(options_.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue name \"", options_.name, "\" is not 1-64 of A-Z a-z 0-9 - _ ."));
  }
  if (scripts_ != nullptr) return scripts_->Eval(script, {prefix_}, args);
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease connection, pool_.Acquire(kAcquireTimeout));
  return connection->Eval(script, {prefix_}, args);
}

absl::Status RedisQueue::CheckJob(const NewJob& job, int index) const {
  // Named only when something is wrong: Enqueue checks every job of a batch on its hot path.
  auto where = [index] { return index < 0 ? std::string("job") : absl::StrCat("job ", index); };
  if (!IsId(job.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(), ": id \"", job.id, "\" is not 1-128 of A-Z a-z 0-9 - _ . :"));
  }
  if (job.priority < -1000 || job.priority > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(), ": priority ", job.priority, " is outside -1000..1000"));
  }
  if (job.payload.size() > options_.max_payload_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where(), ": job data is ", job.payload.size(), " bytes; the limit is ",
                     options_.max_payload_bytes, " bytes (NDX_MAX_JOB_BYTES)"));
  }
  const int max_attempts = job.max_attempts.value_or(options_.default_max_attempts);
  if (max_attempts < 1 || max_attempts > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(), ": max_attempts ", max_attempts, " is outside 1..100"));
  }
  const absl::Duration timeout = job.timeout.value_or(options_.default_timeout);
  const absl::Duration backoff = job.backoff.value_or(options_.default_backoff);
  if (timeout < absl::ZeroDuration() || backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(where(), ": timeout and backoff must be >= 0"));
  }
  if (job.workspace.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(where(), ": workspace contains a space"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisReply> RedisQueue::RunEnqueue(absl::Span<const NewJob* const> jobs, bool each) {
  const int64_t now = NowMs();
  std::vector<std::string> owned;
  owned.reserve(5 + jobs.size() * 3);
  owned.push_back(absl::StrCat(now));
  owned.push_back(absl::StrCat(options_.max_depth));
  owned.push_back(absl::StrCat(absl::ToInt64Seconds(options_.state_ttl)));
  owned.push_back(absl::StrCat(jobs.size()));
  owned.push_back(each ? "1" : "0");
  constexpr size_t kHead = 5;
  for (const NewJob* job : jobs) {
    const int max_attempts = job->max_attempts.value_or(options_.default_max_attempts);
    const absl::Duration timeout = job->timeout.value_or(options_.default_timeout);
    const absl::Duration backoff = job->backoff.value_or(options_.default_backoff);
    owned.push_back(absl::StrCat(job->priority, " ", max_attempts, " ", ToMs(backoff), " ",
                                 ToMs(timeout), " ", now, " ", job->workspace));
  }
  for (const NewJob* job : jobs) {
    owned.push_back(job->run_at ? absl::StrCat(ToMs(*job->run_at)) : "0");
    owned.push_back(absl::StrCat(job->priority));
  }
  std::vector<std::string_view> args;
  args.reserve(kHead + jobs.size() * 6);
  for (size_t i = 0; i < kHead; ++i) args.push_back(owned[i]);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const NewJob& job = *jobs[i];
    args.push_back(job.id);
    args.push_back(job.idempotency_key);
    args.push_back(owned[kHead + i]);
    args.push_back(owned[kHead + jobs.size() + 2 * i]);
    args.push_back(owned[kHead + jobs.size() + 2 * i + 1]);
    args.push_back(job.payload);
  }
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().enqueue, args));
  if (!reply.is_array() || reply.elements().size() != jobs.size() * 2) {
    return Malformed("enqueue", reply);
  }
  return reply;
}

absl::StatusOr<std::vector<EnqueueResult>> RedisQueue::Enqueue(absl::Span<const NewJob> jobs) {
  if (jobs.empty()) return std::vector<EnqueueResult>{};
  std::vector<const NewJob*> ptrs;
  ptrs.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    NDX_RETURN_IF_ERROR(CheckJob(jobs[i], jobs.size() == 1 ? -1 : static_cast<int>(i)));
    ptrs.push_back(&jobs[i]);
  }
  NDX_ASSIGN_OR_RETURN(RedisReply reply, RunEnqueue(ptrs, /*each=*/false));
  std::vector<EnqueueResult> out(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    out[i].id = reply.elements()[2 * i].str();
    NDX_ASSIGN_OR_RETURN(int64_t dup, IntAt(reply, 2 * i + 1));
    out[i].duplicate = dup == 1;
  }
  return out;
}

absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> RedisQueue::EnqueueEach(
    absl::Span<const NewJob> jobs) {
  std::vector<absl::StatusOr<EnqueueResult>> out(jobs.size(), absl::UnknownError("not sent"));
  std::vector<const NewJob*> sent;
  std::vector<size_t> sent_index;
  sent.reserve(jobs.size());
  sent_index.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    // Each job is its own request: its error says "job", not its place in someone else's batch.
    if (absl::Status s = CheckJob(jobs[i]); !s.ok()) {
      out[i] = std::move(s);
      continue;
    }
    sent.push_back(&jobs[i]);
    sent_index.push_back(i);
  }
  if (sent.empty()) return out;
  NDX_ASSIGN_OR_RETURN(RedisReply reply, RunEnqueue(sent, /*each=*/true));
  for (size_t k = 0; k < sent.size(); ++k) {
    NDX_ASSIGN_OR_RETURN(int64_t code, IntAt(reply, 2 * k + 1));
    const std::string& first = reply.elements()[2 * k].str();
    if (code == 2) {
      out[sent_index[k]] = absl::ResourceExhaustedError(absl::StrCat(
          "queue is full: ", first, " executions waiting, the limit is ", options_.max_depth));
    } else {
      out[sent_index[k]] = EnqueueResult{first, code == 1};
    }
  }
  return out;
}

absl::StatusOr<ClaimResult> RedisQueue::Claim(const std::string& worker, int max) {
  if (max < 1) return absl::InvalidArgumentError("claim: max must be >= 1");
  const std::string now = absl::StrCat(NowMs());
  const std::string lease = absl::StrCat(ToMs(options_.lease));
  const std::string n = absl::StrCat(max);
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.state_ttl));
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().claim, {now, worker, lease, n, ttl}));
  if (!reply.is_array() || reply.elements().size() != 2 || !reply.elements()[0].is_array()) {
    return Malformed("claim", reply);
  }
  const std::vector<RedisReply>& flat = reply.elements()[0].elements();
  if (flat.size() % 7 != 0) return Malformed("claim", reply);
  ClaimResult result;
  result.jobs.reserve(flat.size() / 7);
  for (size_t i = 0; i < flat.size(); i += 7) {
    ClaimedJob job;
    job.id = flat[i].str();
    job.epoch = flat[i + 1].integer();
    job.attempt = static_cast<int>(flat[i + 2].integer());
    job.max_attempts = static_cast<int>(flat[i + 3].integer());
    job.ready_since = absl::FromUnixMillis(flat[i + 4].integer());
    job.timeout = absl::Milliseconds(flat[i + 5].integer());
    job.payload = flat[i + 6].str();
    result.jobs.push_back(std::move(job));
  }
  NDX_ASSIGN_OR_RETURN(int64_t next, IntAt(reply, 1));
  if (next >= 0) result.next_due = absl::FromUnixMillis(next);
  return result;
}

absl::Status RedisQueue::WaitForWork(redis::RedisConnection& connection, absl::Duration timeout) {
  // A fresh connection (first use, or after Redis went away) may have missed wake-ups: return at
  // once so that the caller claims before it blocks.
  if (!connection.connected()) return connection.Connect();
  // BLPOP takes seconds with decimals; hiredis' read timeout must exceed the block time.
  const double seconds = std::max(0.01, absl::ToDoubleSeconds(timeout));
  const std::string key = prefix_ + "wake";
  const std::string block = absl::StrFormat("%.3f", seconds);
  absl::StatusOr<RedisReply> r =
      connection.Command({"BLPOP", key, block}, timeout + absl::Seconds(2));
  return r.status();
}

absl::StatusOr<std::vector<LeaseState>> RedisQueue::Renew(absl::Span<const JobRef> jobs) {
  if (jobs.empty()) return std::vector<LeaseState>{};
  std::vector<std::string> owned = {absl::StrCat(NowMs()), absl::StrCat(ToMs(options_.lease))};
  for (const JobRef& j : jobs) owned.push_back(absl::StrCat(j.epoch));
  std::vector<std::string_view> args = {owned[0], owned[1]};
  for (size_t i = 0; i < jobs.size(); ++i) {
    args.push_back(jobs[i].id);
    args.push_back(owned[2 + i]);
  }
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().renew, args));
  if (!reply.is_array() || reply.elements().size() != jobs.size()) return Malformed("renew", reply);
  std::vector<LeaseState> out;
  out.reserve(jobs.size());
  for (const RedisReply& e : reply.elements()) out.push_back(static_cast<LeaseState>(e.integer()));
  return out;
}

absl::StatusOr<std::vector<CompleteOutcome>> RedisQueue::Complete(absl::Span<const JobRef> jobs) {
  std::vector<Completion> completions;
  completions.reserve(jobs.size());
  for (const JobRef& j : jobs) completions.push_back(Completion{j.id, j.epoch, "", "", ""});
  return Complete(absl::MakeConstSpan(completions));
}

absl::StatusOr<std::vector<CompleteOutcome>> RedisQueue::Complete(
    absl::Span<const Completion> jobs) {
  if (jobs.empty()) return std::vector<CompleteOutcome>{};
  std::vector<std::string> owned = {absl::StrCat(NowMs()),
                                    absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl)),
                                    absl::StrCat(options_.keep_finished)};
  for (const Completion& j : jobs) owned.push_back(absl::StrCat(j.epoch));
  std::vector<std::string_view> args = {owned[0], owned[1], owned[2],
                                        options_.history_pending ? "1" : "0"};
  args.reserve(4 + jobs.size() * 6);
  for (size_t i = 0; i < jobs.size(); ++i) {
    args.push_back(jobs[i].id);
    args.push_back(owned[3 + i]);
    args.push_back(jobs[i].workflow_id);
    args.push_back(jobs[i].workspace);
    args.push_back(jobs[i].event_json);
    args.push_back(jobs[i].token);
  }
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().complete, args));
  if (!reply.is_array() || reply.elements().size() != jobs.size()) {
    return Malformed("complete", reply);
  }
  std::vector<CompleteOutcome> out;
  out.reserve(jobs.size());
  for (const RedisReply& e : reply.elements()) {
    out.push_back(static_cast<CompleteOutcome>(e.integer()));
  }
  return out;
}

absl::StatusOr<FailOutcome> RedisQueue::Fail(const JobRef& job, const std::string& error_json,
                                             bool transient, const FailEvents& events) {
  double jitter = 0;
  if (options_.jitter > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    jitter = std::uniform_real_distribution<double>(0, std::min(options_.jitter, 1.0))(rng);
  }
  const std::string now = absl::StrCat(NowMs());
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl));
  const std::string keep = absl::StrCat(options_.keep_finished);
  const std::string epoch = absl::StrCat(job.epoch);
  const std::string jitter_s = absl::StrFormat("%.6f", jitter);
  NDX_ASSIGN_OR_RETURN(
      RedisReply reply,
      Run(S().fail, {now, ttl, keep, job.id, epoch, error_json, transient ? "1" : "0", jitter_s,
                     events.workflow_id, events.append ? "1" : "0", events.timed_out ? "1" : "0",
                     options_.history_pending ? "1" : "0", events.token}));
  NDX_ASSIGN_OR_RETURN(int64_t kind, IntAt(reply, 0));
  NDX_ASSIGN_OR_RETURN(int64_t delay, IntAt(reply, 1));
  NDX_ASSIGN_OR_RETURN(int64_t attempt, IntAt(reply, 2));
  FailOutcome out;
  out.kind = kind == 1   ? FailOutcome::Kind::kRetrying
             : kind == 0 ? FailOutcome::Kind::kFailed
             : kind == 2 ? FailOutcome::Kind::kCancelled
             : kind == 3 ? FailOutcome::Kind::kTimedOut
                         : FailOutcome::Kind::kRejected;
  out.delay = absl::Milliseconds(delay);
  out.attempt = static_cast<int>(attempt);
  return out;
}

absl::StatusOr<StartResult> RedisQueue::Start(const HeldJob& job,
                                              const std::string& started_event_json) {
  const std::string epoch = absl::StrCat(job.epoch);
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.state_ttl));
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().start, {job.id, epoch, job.workflow_id,
                                                         job.workspace, started_event_json, ttl}));
  if (!reply.is_array() || reply.elements().size() != 3) return Malformed("start", reply);
  StartResult r;
  r.lease = static_cast<LeaseState>(reply.elements()[0].integer());
  r.started_seq = reply.elements()[1].integer();
  const auto& flat = reply.elements()[2].elements();
  for (size_t i = 0; i + 1 < flat.size(); i += 2) {
    r.checkpoints.emplace_back(flat[i].str(), flat[i + 1].str());
  }
  return r;
}

absl::StatusOr<NodeEventResult> RedisQueue::NodeEvent(
    const HeldJob& job, absl::Span<const std::string_view> events, std::string_view run_key,
    std::string_view checkpoint_json, bool checkpoints_have_ttl, std::string_view token) {
  const std::string epoch = absl::StrCat(job.epoch);
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.state_ttl));
  std::vector<std::string_view> args = {
      job.id, epoch,   job.workflow_id, job.workspace,
      ttl,    run_key, checkpoint_json, checkpoints_have_ttl ? "1" : "0",
      token};
  args.insert(args.end(), events.begin(), events.end());
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().node_event, args));
  if (!reply.is_array() || reply.elements().size() != 2) return Malformed("node_event", reply);
  return NodeEventResult{static_cast<LeaseState>(reply.elements()[0].integer()),
                         reply.elements()[1].integer()};
}

absl::StatusOr<int> RedisQueue::Suspend(const HeldJob& job, absl::Time resume_at) {
  const std::string epoch = absl::StrCat(job.epoch);
  const std::string at = absl::StrCat(ToMs(resume_at));
  const std::string now = absl::StrCat(NowMs());
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl));
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().suspend, {job.id, epoch, at, now, ttl,
                                                           options_.history_pending ? "1" : "0"}));
  if (!reply.is_integer()) return Malformed("suspend", reply);
  return static_cast<int>(reply.integer());
}

absl::StatusOr<JobState> RedisQueue::Cancel(const std::string& id) {
  const std::string now = absl::StrCat(NowMs());
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl));
  NDX_ASSIGN_OR_RETURN(RedisReply reply,
                       Run(S().cancel, {now, ttl, id, options_.history_pending ? "1" : "0"}));
  if (!reply.is_string() && !reply.is_status()) return Malformed("cancel", reply);
  return StateFromCode(reply.str());
}

absl::Status RedisQueue::Delete(const std::string& id) {
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().del, {id}));
  if (!reply.is_integer()) return Malformed("delete", reply);
  return absl::OkStatus();
}

absl::StatusOr<bool> RedisQueue::AckCancel(const JobRef& job, std::string_view token) {
  const std::string now = absl::StrCat(NowMs());
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl));
  const std::string epoch = absl::StrCat(job.epoch);
  NDX_ASSIGN_OR_RETURN(
      RedisReply reply,
      Run(S().ack_cancel, {now, ttl, job.id, epoch, options_.history_pending ? "1" : "0", token}));
  if (!reply.is_integer()) return Malformed("ack_cancel", reply);
  return reply.integer() == 1;
}

absl::StatusOr<std::vector<int>> RedisQueue::Release(absl::Span<const JobRef> jobs) {
  if (jobs.empty()) return std::vector<int>{};
  std::vector<std::string> owned = {absl::StrCat(NowMs()),
                                    absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl))};
  for (const JobRef& j : jobs) owned.push_back(absl::StrCat(j.epoch));
  std::vector<std::string_view> args = {owned[0], owned[1], options_.history_pending ? "1" : "0"};
  for (size_t i = 0; i < jobs.size(); ++i) {
    args.push_back(jobs[i].id);
    args.push_back(owned[2 + i]);
  }
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().release, args));
  if (!reply.is_array() || reply.elements().size() != jobs.size()) {
    return Malformed("release", reply);
  }
  std::vector<int> out;
  for (const RedisReply& e : reply.elements()) out.push_back(static_cast<int>(e.integer()));
  return out;
}

absl::StatusOr<HousekeepingResult> RedisQueue::Housekeep(const std::string& owner, bool force) {
  const std::vector<std::string> owned = {
      absl::StrCat(NowMs()),
      owner,
      absl::StrCat(std::max<int64_t>(1, ToMs(options_.housekeeping_interval))),
      absl::StrCat(options_.max_stalls),
      absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl)),
      absl::StrCat(options_.keep_finished),
      absl::StrCat(options_.housekeeping_batch),
      force ? "1" : "0",
      options_.history_pending ? "1" : "0",
      absl::StrCat(std::max<int64_t>(1, ToMs(options_.housekeeping_follow_up)))};
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().housekeep, std::vector<std::string_view>(
                                                                owned.begin(), owned.end())));
  if (!reply.is_array() || reply.elements().size() != 10) return Malformed("housekeep", reply);
  HousekeepingResult r;
  r.ran = reply.elements()[0].integer() == 1;
  r.promoted = reply.elements()[1].integer();
  r.requeued = reply.elements()[2].integer();
  r.stall_failed = reply.elements()[3].integer();
  r.timed_out = reply.elements()[4].integer();
  r.cancelled = reply.elements()[5].integer();
  for (const RedisReply& id : reply.elements()[6].elements())
    r.stall_failed_ids.push_back(id.str());
  for (const RedisReply& id : reply.elements()[7].elements()) r.timed_out_ids.push_back(id.str());
  for (const RedisReply& id : reply.elements()[8].elements()) r.cancelled_ids.push_back(id.str());
  r.more = reply.elements()[9].integer() == 1;
  return r;
}

absl::StatusOr<QueueStats> RedisQueue::Stats() {
  const std::string now = absl::StrCat(NowMs());
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().stats, {now}));
  if (!reply.is_array() || reply.elements().size() != 8) return Malformed("stats", reply);
  const auto& e = reply.elements();
  QueueStats s;
  s.waiting = e[0].integer();
  s.active = e[1].integer();
  s.delayed = e[2].integer();
  s.completed = e[3].integer();
  s.failed = e[4].integer();
  s.cancelled = e[5].integer();
  s.timed_out = e[6].integer();
  s.oldest_waiting = absl::Milliseconds(e[7].integer());
  return s;
}

absl::StatusOr<int> RedisQueue::MarkRecorded(absl::Span<const std::string> ids) {
  if (ids.empty()) return 0;
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.completion_ttl));
  std::vector<std::string_view> args = {ttl};
  args.insert(args.end(), ids.begin(), ids.end());
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Run(S().recorded, args));
  if (!reply.is_integer()) return Malformed("recorded", reply);
  return static_cast<int>(reply.integer());
}

absl::StatusOr<std::vector<std::string>> RedisQueue::Unrecorded(absl::Duration older_than,
                                                                int limit) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease connection, pool_.Acquire(kAcquireTimeout));
  NDX_ASSIGN_OR_RETURN(RedisReply reply,
                       connection->Command({"ZRANGEBYSCORE", prefix_ + "unrecorded", "-inf",
                                            absl::StrCat(NowMs() - ToMs(older_than)), "LIMIT", "0",
                                            absl::StrCat(std::max(1, limit))}));
  std::vector<std::string> out;
  for (const RedisReply& e : reply.elements()) out.push_back(e.str());
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RedisQueue::Checkpoints(
    const std::string& id) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease connection, pool_.Acquire(kAcquireTimeout));
  NDX_ASSIGN_OR_RETURN(RedisReply reply, connection->Command({"HGETALL", prefix_ + "o:" + id}));
  std::vector<std::pair<std::string, std::string>> out;
  const auto& e = reply.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) out.emplace_back(e[i].str(), e[i + 1].str());
  return out;
}

absl::StatusOr<std::optional<std::string>> RedisQueue::LookupIdempotency(const std::string& key) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease connection, pool_.Acquire(kAcquireTimeout));
  NDX_ASSIGN_OR_RETURN(RedisReply reply, connection->Command({"GET", prefix_ + "idem:" + key}));
  if (reply.is_nil()) return std::optional<std::string>();
  return std::optional<std::string>(reply.str());
}

absl::StatusOr<JobInfo> RedisQueue::Get(const std::string& id) {
  if (!IsId(id)) return absl::InvalidArgumentError(absl::StrCat("\"", id, "\" is not an id"));
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease connection, pool_.Acquire(kAcquireTimeout));
  const std::string key = absl::StrCat(prefix_, "j:", id);
  NDX_ASSIGN_OR_RETURN(RedisReply reply,
                       connection->Command({"HMGET", key, "st", "o", "at", "ep", "sc", "wk", "rt",
                                            "ls", "dl", "ft", "err", "ro", "d"}));
  if (!reply.is_array() || reply.elements().size() != 13) return Malformed("get", reply);
  std::vector<std::optional<std::string>> v;
  for (const RedisReply& e : reply.elements()) {
    v.push_back(e.is_nil() ? std::nullopt : std::optional<std::string>(e.str()));
  }
  if (!v[0] || !v[1]) {
    return absl::NotFoundError(absl::StrCat("execution ", id, " not found in queue \"",
                                            options_.name, "\" (unknown, or its state expired)"));
  }
  JobInfo info;
  info.id = id;
  info.state = StateFromCode(*v[0]);
  // o = "priority max_attempts backoff_ms timeout_ms created_ms workspace"
  std::vector<std::string> parts = absl::StrSplit(*v[1], absl::MaxSplits(' ', 5));
  int64_t timeout_ms = 0, created_ms = 0;
  if (parts.size() < 5 || !absl::SimpleAtoi(parts[0], &info.priority) ||
      !absl::SimpleAtoi(parts[1], &info.max_attempts) || !absl::SimpleAtoi(parts[3], &timeout_ms) ||
      !absl::SimpleAtoi(parts[4], &created_ms)) {
    return absl::InternalError(absl::StrCat("execution ", id, ": malformed options field"));
  }
  info.timeout = absl::Milliseconds(timeout_ms);
  info.created = absl::FromUnixMillis(created_ms);
  if (parts.size() == 6) info.workspace = parts[5];
  if (v[2]) (void)absl::SimpleAtoi(*v[2], &info.attempts);
  if (v[3]) (void)absl::SimpleAtoi(*v[3], &info.epoch);
  if (v[4]) (void)absl::SimpleAtoi(*v[4], &info.stall_count);
  if (v[5]) info.worker = *v[5];
  info.ready_since = OptionalMs(v[6]);
  // The end of a job leaves ls and dl in its hash (one command less per job): they describe the
  // hold, so they are reported only while the job is held.
  if (info.state == JobState::kActive || info.state == JobState::kCancelling) {
    info.lease_expiry = OptionalMs(v[7]);
    info.deadline = OptionalMs(v[8]);
  }
  info.finished = OptionalMs(v[9]);
  if (v[10]) info.error_json = *v[10];
  if (v[11]) info.retry_of = *v[11];
  if (v[12]) info.payload = *v[12];
  return info;
}

absl::StatusOr<EnqueueResult> RedisQueue::Retry(const std::string& old_id,
                                                const std::string& new_id,
                                                const std::string& idempotency_key) {
  if (!IsId(new_id)) return absl::InvalidArgumentError("retry: bad new id");
  const std::string now = absl::StrCat(NowMs());
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(options_.state_ttl));
  NDX_ASSIGN_OR_RETURN(RedisReply reply,
                       Run(S().retry, {now, ttl, old_id, new_id, idempotency_key}));
  if (!reply.is_array() || reply.elements().size() != 2) return Malformed("retry", reply);
  NDX_ASSIGN_OR_RETURN(int64_t dup, IntAt(reply, 1));
  return EnqueueResult{reply.elements()[0].str(), dup == 1};
}

}  // namespace ndx::queue
