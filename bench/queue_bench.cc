#include "bench/queue_bench.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "bench/redis_probe.h"
#include "bench/workload.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/queue/redis_queue.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "tests/testing/child_process.h"

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

// CLOCK_MONOTONIC nanoseconds (the clock of process.hrtime() in the BullMQ peer).
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double SecondsSince(int64_t start_ns) { return (SteadyNs() - start_ns) / 1e9; }

// CPU time (user + system) of this process, in microseconds.
double SelfCpuUs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_sec * 1e6 +
         u.ru_stime.tv_usec;
}

// CPU time of another process (from /proc/<pid>/stat, in clock ticks), in microseconds; nullopt
// when it cannot be read.
std::optional<double> ProcessCpuUs(int pid) {
  const std::string stat = testing::ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  // "pid (comm) state ..." — comm may hold spaces: fields are counted after the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  int64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return std::nullopt;
  }
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Runs body(0..n-1) on n threads and returns the first error. `stop` is raised as soon as one
// body fails, so that the others (which should poll it) give up too. Bodies return a Status:
// nothing is thrown across threads.
absl::Status RunThreads(int n, std::atomic<bool>& stop,
                        const std::function<absl::Status(int)>& body) {
  std::vector<absl::Status> results(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      results[i] = body(i);
      if (!results[i].ok()) stop = true;
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

queue::QueueOptions QueueOptionsFor(const std::string& name) {
  queue::QueueOptions o;  // the production defaults (lease, TTLs, timeout, attempts, backoff)
  o.name = name;
  return o;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100 * sorted.size()));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

absl::Status Flush(redis::RedisConnection& redis) { return redis.Command({"FLUSHALL"}).status(); }

}  // namespace

NdxQueueBench::NdxQueueBench(NdxBenchOptions options, std::string payload)
    : options_(std::move(options)), payload_(std::move(payload)) {}

NdxQueueBench::~NdxQueueBench() = default;

absl::Status NdxQueueBench::Init() {
  NDX_ASSIGN_OR_RETURN(redis_options_, redis::ParseRedisUrl(options_.redis_url));
  // Long phases move megabytes per call (claims of 100 jobs of 2 KB): keep timeouts generous.
  redis_options_.command_timeout = absl::Seconds(30);
  control_ = std::make_unique<redis::RedisConnection>(redis_options_);
  return control_->Ping();
}

// Enqueue throughput. The measured work is RedisQueue::Enqueue (argument building, one EVALSHA
// per batch, reply parsing) and the enqueue script in Redis; building the NewJob values is not
// (each thread fills its batch once and then only changes the ids).
absl::StatusOr<Json> NdxQueueBench::EnqueueBulk() {
  NDX_RETURN_IF_ERROR(Flush(*control_));
  const int threads = options_.enqueue_threads;
  redis::RedisPool pool(redis_options_, threads);
  queue::RedisQueue queue(pool, QueueOptionsFor(options_.queue), common::RealClock());
  {
    // Not timed: loads the script (into a queue nobody claims from).
    queue::RedisQueue warmup(pool, QueueOptionsFor("warmup"), common::RealClock());
    NDX_RETURN_IF_ERROR(
        warmup.Enqueue({queue::NewJob{.id = queue::NewExecutionId(), .payload = payload_}})
            .status());
  }
  NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(*control_));
  const double cpu0 = SelfCpuUs();
  const int64_t start = SteadyNs();
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  NDX_RETURN_IF_ERROR(RunThreads(threads, stop, [&](int) -> absl::Status {
    std::vector<queue::NewJob> batch(options_.batch);
    for (queue::NewJob& job : batch) job.payload = payload_;
    while (!stop) {
      const int64_t first = next.fetch_add(options_.batch);
      if (first >= options_.jobs) break;
      const size_t n =
          static_cast<size_t>(std::min<int64_t>(options_.batch, options_.jobs - first));
      for (size_t i = 0; i < n; ++i) batch[i].id = queue::NewExecutionId();
      NDX_ASSIGN_OR_RETURN(std::vector<queue::EnqueueResult> r,
                           queue.Enqueue(absl::MakeConstSpan(batch.data(), n)));
      if (r.size() != n) return absl::InternalError("enqueue: wrong number of results");
    }
    return absl::OkStatus();
  }));
  const double seconds = SecondsSince(start);
  const double cpu = SelfCpuUs() - cpu0;
  NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(*control_));
  Json r = {{"impl", "ndx"},
            {"mode", "enqueue-bulk"},
            {"jobs", options_.jobs},
            {"batch", options_.batch},
            {"threads", threads},
            {"seconds", seconds},
            {"jobs_per_s", options_.jobs / seconds},
            {"client_cpu_us_per_job", cpu / options_.jobs},
            {"payload_bytes", payload_.size()}};
  AddCosts(CostsPerJob(before, after, options_.jobs), r);
  return r;
}

// No-op processing throughput: claim + complete, nothing in between. Round trips are counted
// here exactly (one per Claim or Complete call); the Redis side comes from INFO.
absl::StatusOr<Json> NdxQueueBench::Process() {
  const int consumers = options_.consumers;
  redis::RedisPool pool(redis_options_, consumers);
  queue::RedisQueue queue(pool, QueueOptionsFor(options_.queue), common::RealClock());
  NDX_ASSIGN_OR_RETURN(queue::QueueStats stats, queue.Stats());
  const int64_t jobs = stats.waiting;
  if (jobs == 0) return absl::FailedPreconditionError("process: no waiting jobs (run EnqueueBulk)");
  NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(*control_));
  const double cpu0 = SelfCpuUs();
  const int64_t start = SteadyNs();
  std::atomic<int64_t> completed{0}, calls{0};
  std::atomic<bool> stop{false};
  NDX_RETURN_IF_ERROR(RunThreads(consumers, stop, [&](int i) -> absl::Status {
    const std::string worker = absl::StrCat("bench-consumer-", i);
    std::vector<queue::JobRef> refs;
    refs.reserve(options_.claim_batch);
    while (!stop) {
      NDX_ASSIGN_OR_RETURN(queue::ClaimResult claim, queue.Claim(worker, options_.claim_batch));
      ++calls;
      // Every job was enqueued before the start: an empty claim means the queue is drained.
      if (claim.jobs.empty()) break;
      refs.clear();
      for (queue::ClaimedJob& job : claim.jobs) refs.push_back({std::move(job.id), job.epoch});
      NDX_ASSIGN_OR_RETURN(std::vector<queue::CompleteOutcome> outcomes, queue.Complete(refs));
      ++calls;
      completed += std::count(outcomes.begin(), outcomes.end(), queue::CompleteOutcome::kCompleted);
    }
    return absl::OkStatus();
  }));
  const double seconds = SecondsSince(start);
  const double cpu = SelfCpuUs() - cpu0;
  NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(*control_));
  if (completed != jobs) {
    return absl::InternalError(absl::StrCat("process: completed ", completed.load(), " of ", jobs));
  }
  Json r = {{"impl", "ndx"},
            {"mode", "process"},
            {"jobs", jobs},
            {"completed", completed.load()},
            {"consumers", consumers},
            {"claim_batch", options_.claim_batch},
            {"seconds", seconds},
            {"jobs_per_s", jobs / seconds},
            {"round_trips_per_job", static_cast<double>(calls) / jobs},
            {"client_cpu_us_per_job", cpu / jobs},
            {"payload_bytes", payload_.size()}};
  AddCosts(CostsPerJob(before, after, jobs), r);
  return r;
}

// Single-request enqueue through gRPC: what the gateway does per NodeDrop "execute workflow".
// The cost includes the client stub, ndx-queue (proto parse, building the job payload JSON from
// the workflow, one Enqueue) and Redis; the server's CPU is reported separately.
absl::StatusOr<Json> NdxQueueBench::EnqueueGrpc(const std::string& target, int inflight,
                                                int64_t jobs, int server_pid) {
  NDX_RETURN_IF_ERROR(Flush(*control_));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::QueueService::Stub> stub = v1::QueueService::NewStub(channel);
  const v1::ExecuteWorkflowRequest request = WorkflowRequest(options_.queue);
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(10); };
  // Not timed: connects the channel, registers the queue, loads the script.
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    v1::ExecuteWorkflowResponse response;
    grpc::Status s = stub->ExecuteWorkflow(&context, request, &response);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("ExecuteWorkflow on ", target, ": ", s.error_message()));
    }
  }
  NDX_RETURN_IF_ERROR(Flush(*control_));
  NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(*control_));
  const std::optional<double> server_cpu0 =
      server_pid > 0 ? ProcessCpuUs(server_pid) : std::nullopt;
  const double cpu0 = SelfCpuUs();
  const int64_t start = SteadyNs();
  if (inflight <= 1) {
    for (int64_t i = 0; i < jobs; ++i) {
      grpc::ClientContext context;
      context.set_deadline(deadline());
      v1::ExecuteWorkflowResponse response;
      grpc::Status s = stub->ExecuteWorkflow(&context, request, &response);
      if (!s.ok()) return absl::InternalError(absl::StrCat("ExecuteWorkflow: ", s.error_message()));
    }
  } else {
    // `inflight` calls outstanding on the callback API: each completion starts the next call,
    // until `jobs` were issued. Every call has its own context and response, made before the
    // clock starts and destroyed after the last completion (never inside a callback). Callbacks
    // run on gRPC's threads and touch only atomics and the mutex-guarded counters.
    struct Call {
      grpc::ClientContext context;
      v1::ExecuteWorkflowResponse response;
    };
    std::vector<std::unique_ptr<Call>> calls(jobs);
    for (std::unique_ptr<Call>& call : calls) call = std::make_unique<Call>();
    std::atomic<int64_t> issued{0};
    absl::Mutex mu;
    int64_t finished = 0;   // guarded by mu
    bool all_done = false;  // guarded by mu
    absl::Status error;     // guarded by mu
    std::function<void()> issue = [&] {
      const int64_t i = issued.fetch_add(1);
      if (i >= jobs) return;
      Call& call = *calls[i];
      call.context.set_deadline(deadline());
      stub->async()->ExecuteWorkflow(&call.context, &request, &call.response, [&](grpc::Status s) {
        issue();
        absl::MutexLock lock(&mu);
        all_done = ++finished >= jobs;
        if (!s.ok() && error.ok()) {
          error = absl::InternalError(absl::StrCat("ExecuteWorkflow: ", s.error_message()));
        }
      });
    };
    for (int i = 0; i < inflight; ++i) issue();
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&all_done));
    NDX_RETURN_IF_ERROR(error);
  }
  const double seconds = SecondsSince(start);
  const double cpu = SelfCpuUs() - cpu0;
  const std::optional<double> server_cpu1 =
      server_pid > 0 ? ProcessCpuUs(server_pid) : std::nullopt;
  NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(*control_));
  Json r = {{"impl", "ndx"},
            {"mode", "enqueue-single"},
            {"via", "grpc"},
            {"jobs", jobs},
            {"inflight", inflight},
            {"seconds", seconds},
            {"jobs_per_s", jobs / seconds},
            {"client_cpu_us_per_job", cpu / jobs},
            {"payload_bytes", payload_.size()}};
  if (server_cpu0 && server_cpu1) r["server_cpu_us_per_job"] = (*server_cpu1 - *server_cpu0) / jobs;
  AddCosts(CostsPerJob(before, after, jobs), r);
  return r;
}

// Pickup latency at a fixed rate. Job ids carry the CLOCK_MONOTONIC time of their Enqueue call
// ("lat-<ns>-<seq>"), so consumers compute each job's latency without shared state.
absl::StatusOr<Json> NdxQueueBench::Latency() {
  NDX_RETURN_IF_ERROR(Flush(*control_));
  const int consumers = options_.consumers;
  redis::RedisPool pool(redis_options_, consumers + 1);
  queue::RedisQueue queue(pool, QueueOptionsFor(options_.queue), common::RealClock());
  const int64_t total =
      static_cast<int64_t>(options_.rate * absl::ToDoubleSeconds(options_.latency_time));
  std::vector<std::vector<double>> samples(consumers);
  std::atomic<int64_t> received{0};
  std::atomic<bool> stop{false};
  std::atomic<int> waiting{0};
  absl::Status consumers_status;
  std::thread consumer_group([&] {
    consumers_status = RunThreads(consumers, stop, [&](int i) -> absl::Status {
      const std::string worker = absl::StrCat("bench-consumer-", i);
      redis::RedisConnection blocking(redis_options_);  // WaitForWork holds it while blocked
      std::vector<queue::JobRef> refs;
      samples[i].reserve(total);
      while (!stop) {
        NDX_ASSIGN_OR_RETURN(queue::ClaimResult claim, queue.Claim(worker, options_.claim_batch));
        const int64_t now = SteadyNs();
        if (claim.jobs.empty()) {
          ++waiting;
          absl::Status s = queue.WaitForWork(blocking, absl::Seconds(1));
          --waiting;
          NDX_RETURN_IF_ERROR(s);
          continue;
        }
        refs.clear();
        for (queue::ClaimedJob& job : claim.jobs) {
          std::vector<absl::string_view> parts = absl::StrSplit(job.id, '-');
          int64_t sent = 0;
          if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &sent)) {
            return absl::InternalError(absl::StrCat("latency: unexpected job id ", job.id));
          }
          samples[i].push_back((now - sent) / 1e6);
          refs.push_back({std::move(job.id), job.epoch});
        }
        NDX_RETURN_IF_ERROR(queue.Complete(refs).status());
        received += static_cast<int64_t>(refs.size());
      }
      return absl::OkStatus();
    });
  });
  // The consumers are idle and blocked before the first job.
  testing::WaitUntil([&] { return waiting == consumers || stop; }, absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(200));

  // Open-loop producer: job i is enqueued at start + i / rate, or as soon after as possible.
  absl::Status producer_status;
  std::vector<queue::NewJob> one(1);
  one[0].payload = payload_;
  const double interval_ns = 1e9 / options_.rate;
  const int64_t start = SteadyNs();
  for (int64_t i = 0; i < total && !stop; ++i) {
    const int64_t due = start + static_cast<int64_t>(i * interval_ns);
    const int64_t now = SteadyNs();
    if (due > now) absl::SleepFor(absl::Nanoseconds(due - now));
    one[0].id = absl::StrCat("lat-", SteadyNs(), "-", i);
    if (absl::Status s = queue.Enqueue(one).status(); !s.ok()) {
      producer_status = s;
      break;
    }
  }
  const double achieved = total / SecondsSince(start);
  if (producer_status.ok() &&
      !testing::WaitUntil([&] { return received >= total || stop; }, absl::Seconds(30))) {
    producer_status = absl::DeadlineExceededError(
        absl::StrCat("latency: only ", received.load(), " of ", total, " jobs were claimed"));
  }
  stop = true;
  // Wake the blocked consumers so that they see `stop` (instead of waiting out their timeout).
  for (int i = 0; i < consumers; ++i) {
    (void)control_->Command({"LPUSH", absl::StrCat(queue.prefix(), "wake"), "stop"});
  }
  consumer_group.join();
  NDX_RETURN_IF_ERROR(producer_status);
  NDX_RETURN_IF_ERROR(consumers_status);

  std::vector<double> all;
  for (const std::vector<double>& s : samples) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  return Json{{"impl", "ndx"},
              {"mode", "latency"},
              {"rate", options_.rate},
              {"achieved_rate", achieved},
              {"seconds", absl::ToDoubleSeconds(options_.latency_time)},
              {"jobs", all.size()},
              {"consumers", consumers},
              {"p50_ms", Percentile(all, 50)},
              {"p90_ms", Percentile(all, 90)},
              {"p99_ms", Percentile(all, 99)},
              {"max_ms", all.empty() ? 0 : all.back()},
              {"payload_bytes", payload_.size()}};
}

// Memory per waiting job, then after its state TTL. used_memory counts every allocation (keys,
// values, indexes, allocator rounding), so the growth over N jobs divided by N is the per-job
// cost of everything the queue writes for a waiting job.
absl::StatusOr<Json> NdxQueueBench::Memory() {
  NDX_ASSIGN_OR_RETURN(const Json first, MemoryCycle());
  NDX_ASSIGN_OR_RETURN(Json second, MemoryCycle());
  for (const char* key : {"bytes_per_job", "after_ttl_bytes_per_job", "after_sweep_bytes_per_job",
                          "after_claim_bytes_per_job"}) {
    second[absl::StrCat("first_cycle_", key)] = first[key];
  }
  return second;
}

absl::StatusOr<Json> NdxQueueBench::MemoryCycle() {
  NDX_RETURN_IF_ERROR(Flush(*control_));
  redis::RedisPool pool(redis_options_, 1);
  queue::QueueOptions o = QueueOptionsFor(options_.queue);
  o.state_ttl = options_.memory_ttl;
  queue::RedisQueue queue(pool, o, common::RealClock());
  // The slow log is Redis's, bounded (128 entries) and kept across FLUSHALL: emptied before the
  // baseline, and what the cycle put there is reported (redis_probe.h).
  NDX_RETURN_IF_ERROR(ResetSlowlog(*control_).status());
  NDX_ASSIGN_OR_RETURN(ServerCounters base, ReadCounters(*control_));
  const int64_t n = options_.memory_jobs;
  std::vector<queue::NewJob> batch(options_.batch);
  for (queue::NewJob& job : batch) job.payload = payload_;
  const int64_t enqueued_at = SteadyNs();
  for (int64_t first = 0; first < n; first += options_.batch) {
    const size_t size = static_cast<size_t>(std::min<int64_t>(options_.batch, n - first));
    for (size_t i = 0; i < size; ++i) batch[i].id = queue::NewExecutionId();
    NDX_RETURN_IF_ERROR(queue.Enqueue(absl::MakeConstSpan(batch.data(), size)).status());
  }
  NDX_ASSIGN_OR_RETURN(ServerCounters filled, ReadCounters(*control_));

  // After the TTL: wait until the per-job keys are gone (what remains is a handful of per-queue
  // keys), then let Redis finish freeing.
  constexpr int64_t kQueueKeys = 16;
  absl::Status poll_error;
  const bool expired = testing::WaitUntil(
      [&] {
        absl::StatusOr<redis::RedisReply> keys = control_->Command({"DBSIZE"});
        if (!keys.ok()) poll_error = keys.status();
        return !keys.ok() || keys->integer() - base.keys <= kQueueKeys;
      },
      options_.memory_ttl + absl::Seconds(30), absl::Milliseconds(50));
  NDX_RETURN_IF_ERROR(poll_error);
  const double expired_after = SecondsSince(enqueued_at);
  absl::SleepFor(absl::Milliseconds(300));
  NDX_ASSIGN_OR_RETURN(ServerCounters after_ttl, ReadCounters(*control_));

  NDX_ASSIGN_OR_RETURN(redis::RedisReply left_in_wait,
                       control_->Command({"ZCARD", absl::StrCat(queue.prefix(), "wait")}));

  // Housekeeping as every ndx process runs it (the hk lease lets one run per interval, 1 s by
  // default, or per follow-up, 50 ms, while a run leaves a backlog), with no consumer: how long
  // until the wait index has let go of the expired jobs, and the longest run (a round trip on
  // an otherwise idle Redis: about the time the script blocked it).
  const int64_t sweep_start = SteadyNs();
  int64_t left = left_in_wait.integer();
  int64_t housekeeping_runs = 0;
  double housekeeping_max_ms = 0;
  while (left > 0 && SecondsSince(sweep_start) < 120) {
    const int64_t call_start = SteadyNs();
    NDX_ASSIGN_OR_RETURN(const queue::HousekeepingResult hk,
                         queue.Housekeep("bench-housekeeper", /*force=*/false));
    if (hk.ran) {
      ++housekeeping_runs;
      housekeeping_max_ms = std::max(housekeeping_max_ms, SecondsSince(call_start) * 1e3);
    }
    absl::SleepFor(absl::Milliseconds(10));
    NDX_ASSIGN_OR_RETURN(redis::RedisReply z,
                         control_->Command({"ZCARD", absl::StrCat(queue.prefix(), "wait")}));
    left = z.integer();
  }
  const double swept_after = SecondsSince(sweep_start);
  absl::SleepFor(absl::Milliseconds(300));
  NDX_ASSIGN_OR_RETURN(ServerCounters after_sweep, ReadCounters(*control_));

  // One consumer pass over what is left in the wait index (claims drop entries whose job expired).
  for (int i = 0; i < 1000; ++i) {
    NDX_ASSIGN_OR_RETURN(redis::RedisReply z,
                         control_->Command({"ZCARD", absl::StrCat(queue.prefix(), "wait")}));
    if (z.integer() == 0) break;
    NDX_RETURN_IF_ERROR(queue.Claim("bench-sweeper", 1000).status());
  }
  NDX_ASSIGN_OR_RETURN(ServerCounters after_claim, ReadCounters(*control_));
  NDX_ASSIGN_OR_RETURN(const SlowlogSummary slowlog, ResetSlowlog(*control_));

  auto per_job = [&](const ServerCounters& c) {
    return static_cast<double>(c.used_memory - base.used_memory) / n;
  };
  return Json{{"impl", "ndx"},
              {"mode", "memory"},
              {"jobs", n},
              {"payload_bytes", payload_.size()},
              {"bytes_per_job", per_job(filled)},
              {"keys_per_job", static_cast<double>(filled.keys - base.keys) / n},
              {"ttl_s", absl::ToDoubleSeconds(options_.memory_ttl)},
              {"keys_expired", expired},
              {"expired_after_s", expired_after},
              {"after_ttl_bytes_per_job", per_job(after_ttl)},
              {"after_ttl_keys", after_ttl.keys - base.keys},
              {"after_ttl_wait_entries", left_in_wait.integer()},
              {"swept_after_s", swept_after},
              {"housekeeping_runs", housekeeping_runs},
              {"housekeeping_max_ms", housekeeping_max_ms},
              {"after_sweep_wait_entries", left},
              {"after_sweep_bytes_per_job", per_job(after_sweep)},
              {"after_sweep_dataset_bytes_per_job",
               static_cast<double>(after_sweep.used_memory_dataset - base.used_memory_dataset) / n},
              {"after_claim_bytes_per_job", per_job(after_claim)},
              {"slowlog_entries", slowlog.entries},
              {"slowlog_bytes", slowlog.freed_bytes},
              {"slowlog_longest_us", slowlog.longest_us},
              {"slowlog_commands", slowlog.commands}};
}

absl::StatusOr<Json> EvalshaRate(redis::RedisConnection& redis, int port, int pipeline) {
  NDX_ASSIGN_OR_RETURN(redis::RedisReply sha, redis.Command({"SCRIPT", "LOAD", "return 1"}));
  const std::string dir = testing::MakeTempDir("ndx-bench-evalsha");
  const std::string log = dir + "/redis-benchmark.csv";
  const int64_t requests = pipeline > 1 ? 1000000 : 200000;
  testing::ChildProcess benchmark;
  NDX_RETURN_IF_ERROR(benchmark.Start(
      {"redis-benchmark", "-h", "127.0.0.1", "-p", absl::StrCat(port), "-c", "50", "-n",
       absl::StrCat(requests), "-P", absl::StrCat(pipeline), "--csv", "EVALSHA", sha.str(), "0"},
      log));
  absl::StatusOr<int> status = benchmark.WaitFor(absl::Seconds(60));
  if (!status.ok()) {
    benchmark.Signal(SIGKILL);
    benchmark.Wait();
    return absl::DeadlineExceededError("redis-benchmark did not finish within 60 s");
  }
  const std::string csv = testing::ReadFile(log);
  std::remove(log.c_str());
  ::rmdir(dir.c_str());
  // "test","rps",...  then  "EVALSHA <sha> 0","123456.78",...
  for (absl::string_view line : absl::StrSplit(csv, absl::ByAnyChar("\r\n"))) {
    if (!absl::StartsWithIgnoreCase(line, "\"evalsha")) continue;
    std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    double rps = 0;
    if (cells.size() > 1 && absl::SimpleAtod(absl::StripAsciiWhitespace(absl::StripSuffix(
                                                 absl::StripPrefix(cells[1], "\""), "\"")),
                                             &rps)) {
      return Json{{"impl", "redis"},      {"mode", "evalsha"},    {"connections", 50},
                  {"pipeline", pipeline}, {"requests", requests}, {"per_s", rps}};
    }
  }
  return absl::InternalError(absl::StrCat("cannot read redis-benchmark's output: ", csv));
}

}  // namespace ndx::bench
