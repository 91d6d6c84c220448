#include "bench/worker_bench.h"

#include <signal.h>

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/redis_probe.h"
#include "bench/workload.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/queue/redis_queue.h"
#include "services/queue/job_payload.h"
#include "tests/testing/child_process.h"

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

// Little work per node (no HTTP, no JavaScript; n5, the false branch, is skipped: 9 nodes run, 10
// checkpoints): what is measured is the worker's per-node
// overhead (engine bookkeeping, checkpoint + events in Redis), not the nodes.
constexpr NodeSpec kNodes[] = {
    {"n1", "Start", "manual-trigger", "{}"},
    // The manual trigger outputs its own item ({triggeredAt, triggerType, metadata}), not the
    // trigger data: n2 adds the fields the rest works on (one of them by a fast-path expression).
    {"n2", "Total", "set",
     R"({"values":[{"keyValue":{"key":"total","value":"150"}},{"keyValue":{"key":"source","value":"{{ $json.metadata.source }}"}}]})"},
    {"n3", "Big?", "ifElse",
     R"({"condition":{"key":"{{ $json.total }}","expression":"larger","value":100}})"},
    {"n4", "Gold", "set", R"({"values":[{"keyValue":{"key":"tier","value":"gold"}}]})"},
    {"n5", "Customer", "set",
     R"({"values":[{"keyValue":{"key":"tier","value":"{{ $json.source }}"}}]})"},
    {"n6", "Merge", "merge", R"({"mode":"append"})"},
    {"n7", "Pass", "noop", "{}"},
    {"n8", "Mark", "set", R"({"values":[{"keyValue":{"key":"status","value":"processed"}}]})"},
    {"n9", "Gold?", "ifElse",
     R"({"condition":{"key":"tier","expression":"equal","value":"gold"}})"},
    {"n10", "Done", "noop", "{}"},
};

constexpr EdgeSpec kEdges[] = {
    {"n1", "main", "n2"}, {"n2", "main", "n3"},  {"n3", "true", "n4"}, {"n3", "false", "n5"},
    {"n4", "main", "n6"}, {"n5", "main", "n6"},  {"n6", "main", "n7"}, {"n7", "main", "n8"},
    {"n8", "main", "n9"}, {"n9", "true", "n10"},
};

}  // namespace

v1::ExecuteWorkflowRequest LightWorkflowRequest(const std::string& queue) {
  v1::ExecuteWorkflowRequest request;
  v1::Workflow* wf = request.mutable_workflow();
  wf->set_id("wf-bench-light");
  wf->set_name("Light 10-node workflow");
  BuildWorkflow(kNodes, kEdges, *wf);
  request.set_trigger_data_json(R"({"order":{"id":"o-1","total":150,"customer":"acme"}})");
  request.set_use_queue(true);
  request.set_queue(queue);
  request.set_workspace_id("ws-bench");
  return request;
}

namespace {

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench] %s\n", message.c_str());
}

}  // namespace

absl::StatusOr<std::string> LightWorkflowPayload(const std::string& queue) {
  absl::StatusOr<queue::JobPayload> payload =
      queue::BuildJobPayload(LightWorkflowRequest(queue), queue, /*validator=*/{});
  if (!payload.ok()) return payload.status();
  return std::move(payload->json);
}

NdxWorkerBench::NdxWorkerBench(WorkerBenchOptions options) : options_(std::move(options)) {}
NdxWorkerBench::~NdxWorkerBench() = default;

absl::Status NdxWorkerBench::Init() {
  NDX_ASSIGN_OR_RETURN(payload_, LightWorkflowPayload(options_.queue));
  NDX_ASSIGN_OR_RETURN(redis_options_, redis::ParseRedisUrl(options_.redis_url));
  redis_options_.command_timeout = absl::Seconds(30);
  control_ = std::make_unique<redis::RedisConnection>(redis_options_);
  pool_ = std::make_unique<redis::RedisPool>(redis_options_, 2);
  return control_->Ping();
}

absl::StatusOr<Json> NdxWorkerBench::Run(int procs, int slots) {
  NDX_RETURN_IF_ERROR(control_->Command({"FLUSHALL"}).status());
  queue::QueueOptions qo;
  qo.name = options_.queue;
  queue::RedisQueue queue(*pool_, qo, common::RealClock());
  // Pre-fill.
  const int64_t n = options_.executions;
  std::vector<queue::NewJob> batch;
  for (int64_t done = 0; done < n;) {
    batch.clear();
    for (int i = 0; i < 100 && done < n; ++i, ++done) {
      batch.push_back(queue::NewJob{
          .id = queue::NewExecutionId(), .payload = payload_, .workspace = "ws-bench"});
    }
    NDX_RETURN_IF_ERROR(queue.Enqueue(batch).status());
  }
  NDX_ASSIGN_OR_RETURN(queue::QueueStats filled, queue.Stats());
  if (filled.waiting != n) {
    return absl::InternalError(absl::StrCat("pre-fill: ", filled.waiting, " waiting, not ", n));
  }
  ++runs_;
  NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(*control_));
  std::vector<std::unique_ptr<testing::ChildProcess>> workers;
  const int64_t spawn_ns = MonotonicNs();
  for (int i = 0; i < procs; ++i) {
    auto w = std::make_unique<testing::ChildProcess>();
    NDX_RETURN_IF_ERROR(w->Start(
        {options_.worker_binary},
        absl::StrCat(options_.log_dir, "/ndx-worker-", runs_, "-", i, ".log"),
        {{"REDIS_URL", options_.redis_url},
         // Never reached: the workflow sets saveExecutionToDatabase false (no history rows).
         {"DATABASE_URL", "postgresql://ndx:ndx@127.0.0.1:1/ndx"},
         {"NDX_QUEUE", options_.queue},
         {"NDX_WORKER_ADDR", "127.0.0.1:0"},
         {"NDX_WORKER_METRICS_ADDR", "127.0.0.1:0"},
         {"NDX_WORKER_ID", absl::StrCat("bench-", runs_, "-", i)},
         {"EXECUTION_WORKER_CONCURRENCY", absl::StrCat(slots)},
         {"NDX_SHUTDOWN_GRACE", "2s"},
         {"NDX_LOG_LEVEL", "warn"}}));
    workers.push_back(std::move(w));
  }
  auto stop_all = [&] {
    for (auto& w : workers) w->Signal(SIGTERM);
    for (auto& w : workers) {
      if (!w->WaitFor(absl::Seconds(10)).ok()) {
        w->Signal(SIGKILL);
        w->Wait();
      }
    }
  };
  // The first claim: the clock of the measurement starts there (process start-up excluded, as the
  // BullMQ peer starts its clock once its workers are ready).
  int64_t first_ns = 0;
  std::vector<double> cpu_at_first(procs, 0);
  queue::QueueStats s;
  const absl::Time give_up = absl::Now() + options_.timeout;
  for (;;) {
    absl::StatusOr<queue::QueueStats> st = queue.Stats();
    if (!st.ok()) {
      stop_all();
      return st.status();
    }
    s = *st;
    if (first_ns == 0 && (s.waiting < n || s.active > 0)) {
      first_ns = MonotonicNs();
      for (int i = 0; i < procs; ++i) cpu_at_first[i] = PidCpuUs(workers[i]->pid()).value_or(0);
    }
    if (s.waiting == 0 && s.active == 0 && s.delayed == 0) break;
    for (auto& w : workers) {
      if (!w->Running()) {
        stop_all();
        return absl::InternalError(absl::StrCat("an ndx-worker exited early; log ", w->log_path(),
                                                ":\n", testing::ReadFile(w->log_path())));
      }
    }
    if (absl::Now() > give_up) {
      stop_all();
      return absl::DeadlineExceededError(absl::StrCat("worker run: ", s.waiting, " waiting and ",
                                                      s.active, " active after the timeout"));
    }
    absl::SleepFor(first_ns == 0 ? absl::Milliseconds(2) : absl::Milliseconds(10));
  }
  const int64_t end_ns = MonotonicNs();
  NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(*control_));
  double worker_cpu = 0, worker_cpu_total = 0;
  for (int i = 0; i < procs; ++i) {
    const double c = PidCpuUs(workers[i]->pid()).value_or(0);
    worker_cpu += c - cpu_at_first[i];
    worker_cpu_total += c;
  }
  stop_all();
  const double seconds = (end_ns - first_ns) / 1e9;
  JobCosts costs = CostsPerJob(before, after, n);
  Json r = {{"impl", "ndx"},
            {"mode", "worker"},
            {"procs", procs},
            {"concurrency", slots},
            {"executions", n},
            {"completed", s.completed},
            {"failed", s.failed + s.timed_out + s.cancelled},
            {"seconds", seconds},
            {"startup_s", (first_ns - spawn_ns) / 1e9},
            {"exec_per_s", n / seconds},
            {"exec_per_s_incl_startup", n / ((end_ns - spawn_ns) / 1e9)},
            {"client_cpu_us_per_exec", worker_cpu / n},
            {"client_cpu_us_per_exec_incl_startup", worker_cpu_total / n}};
  AddCosts(costs, r);
  // AddCosts names them per job; here a job is one execution.
  r["redis_cpu_us_per_exec"] = costs.redis_cpu_us;
  r["redis_commands_per_exec"] = costs.redis_commands;
  r["script_calls_per_exec"] = costs.script_calls;
  r["redis_cpu_util"] = costs.redis_cpu_us * n / 1e6 / seconds;
  r["client_cpu_util"] = worker_cpu / 1e6 / seconds;
  Progress(r.dump());
  return r;
}

}  // namespace ndx::bench
