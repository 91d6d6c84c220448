// ndx-bench: benchmarks of ndx against the system it replaces (bench/README.md).
//
//   ndx-bench queue [--flags]
//   ndx-bench engine [--flags]     the engine in process: executions/s per core, expression evals/s
//   ndx-bench events [--flags]     EventLog appends/s; append-to-gRPC-client latency
//   ndx-bench worker [--flags]     ndx-worker processes vs a BullMQ 10-step processor; 1/2/4 procs
//   ndx-bench scale [--flags]      the same as `worker`
//   ndx-bench gateway [--flags]    ndx-gateway: REST executions/s; N Socket.IO clients following
//                                  executions (event latency, gateway RSS)
//   ndx-bench chaos [--flags]      the chaos scenario (tests/chaos/chaos_scenario.h) for
//                                  --duration: faults under load; lost / duplicated / stuck
//   ndx-bench soak [--flags]       the whole suite at 70% of its probed maximum for --duration:
//                                  RSS of each process and Redis used_memory over time
//
// starts its own redis-server (no persistence) and ndx-queue on free loopback ports, then, `--runs`
// times, measures ndx's queue and BullMQ 5 (bench/peers/bullmq/bench.js, run with Node) against
// that same server, one measurement type after the other (FLUSHALL between phases), and prints one
// table per run: measurement, ndx, BullMQ, ratio, target, pass/FAIL. Exit status 0 when every
// target is met in every run, 3 when one is missed, 1 on errors.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/bullmq_peer.h"
#include "bench/engine_bench.h"
#include "bench/events_bench.h"
#include "bench/gateway_bench.h"
#include "bench/queue_bench.h"
#include "bench/report.h"
#include "bench/soak_bench.h"
#include "bench/worker_bench.h"
#include "bench/workload.h"
#include "libs/common/status_macros.h"
#include "libs/engine/js/js_sandbox.h"
#include "tests/chaos/chaos_scenario.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/redis_server.h"

#ifndef NDX_QUEUE_BINARY
#define NDX_QUEUE_BINARY "ndx-queue"
#endif
#ifndef NDX_WORKER_BINARY
#define NDX_WORKER_BINARY "ndx-worker"
#endif
#ifndef NDX_GATEWAY_BINARY
#define NDX_GATEWAY_BINARY "ndx-gateway"
#endif
#ifndef NDX_SOURCE_DIR
#define NDX_SOURCE_DIR "."
#endif

// Sizes. The defaults fit a 2-core machine (Redis, ndx and the load driver share it) and keep
// `ndx-bench queue` at about 5 minutes.
ABSL_FLAG(int64_t, jobs, 100000, "pre-filled jobs of the enqueue-bulk and processing phases");
ABSL_FLAG(int, batch, 100, "jobs per Enqueue call (ndx) and per addBulk call (BullMQ)");
ABSL_FLAG(int, enqueue_threads, 2, "ndx bulk enqueue: threads, one Redis connection each");
ABSL_FLAG(int, consumers, 2, "ndx processing and latency: consumer threads");
ABSL_FLAG(int, claim_batch, 100, "ndx processing and latency: jobs per Claim / Complete call");
ABSL_FLAG(int64_t, grpc_jobs, 20000, "single enqueues with --inflight calls outstanding");
ABSL_FLAG(int64_t, sequential_jobs, 5000, "single enqueues, one at a time");
ABSL_FLAG(int, inflight, 16, "single enqueue: calls outstanding (gRPC for ndx, add for BullMQ)");
ABSL_FLAG(double, rate, 2000, "latency phase: jobs per second");
ABSL_FLAG(int, latency_seconds, 10, "latency phase: duration");
ABSL_FLAG(int64_t, memory_jobs, 20000, "memory phase: waiting jobs");
ABSL_FLAG(int, memory_ttl_seconds, 2, "memory phase: ndx state TTL, to watch the jobs expire");
ABSL_FLAG(std::string, bullmq_process, "1x16,1x64,1x256,2x64,2x256",
          "BullMQ processing settings tried, PROCSxCONCURRENCY (worker processes x Worker "
          "concurrency); the best is compared");
ABSL_FLAG(std::string, bullmq_bulk_inflight, "1,4",
          "BullMQ bulk enqueue: addBulk calls outstanding, tried in turn; the best is compared");
ABSL_FLAG(int, bullmq_latency_concurrency, 64, "BullMQ latency phase: Worker concurrency");
ABSL_FLAG(int, runs, 2, "how many times the whole comparison runs");
ABSL_FLAG(std::string, phases, "throughput,single,latency,memory,evalsha",
          "phases to run: throughput (bulk enqueue, then processing of those jobs), single "
          "(single-request enqueue), latency, memory, evalsha (redis-benchmark)");
ABSL_FLAG(bool, skip_bullmq, false, "measure ndx only");
ABSL_FLAG(std::string, node, "node", "the Node 20 binary");
ABSL_FLAG(std::string, peer_dir, NDX_SOURCE_DIR "/bench/peers/bullmq",
          "directory of the BullMQ peer (bench.js, with `npm ci` done)");
ABSL_FLAG(std::string, ndx_queue, NDX_QUEUE_BINARY, "the ndx-queue binary");
ABSL_FLAG(std::string, json_out, "", "also write every measurement here, one JSON line each");
ABSL_FLAG(int, max_minutes, 9, "no new run starts after this many minutes");
// engine
ABSL_FLAG(int, engine_seconds, 5, "engine: seconds per measurement");
ABSL_FLAG(int, engine_items, 1000, "engine: items per Set node run in the expression phase");
// events
ABSL_FLAG(double, event_rate, 10000, "events: events/s of the latency phase");
ABSL_FLAG(int, event_subscribers, 100, "events: executions = gRPC subscribers");
ABSL_FLAG(int, event_seconds, 10, "events: duration of the latency phase");
ABSL_FLAG(int, event_producers, 4, "events: producer threads of the latency phase");
ABSL_FLAG(int, append_seconds, 3, "events: seconds per append-rate measurement");
// worker / scale
ABSL_FLAG(int64_t, executions, 10000, "worker: pre-filled executions per setting");
ABSL_FLAG(std::string, worker_process, "1x8,1x32,2x8,2x32,4x8,4x32",
          "worker: ndx settings tried, PROCSxSLOTS (ndx-worker processes x "
          "EXECUTION_WORKER_CONCURRENCY)");
ABSL_FLAG(std::string, bullmq_worker_process, "1x16,1x64,2x64,4x64",
          "worker: BullMQ settings tried, PROCSxCONCURRENCY; the best is compared");
ABSL_FLAG(std::string, ndx_worker, NDX_WORKER_BINARY, "the ndx-worker binary");
ABSL_FLAG(bool, keep_logs, false,
          "keep the log directory (ndx-queue, BullMQ peer, payload) after a successful run; it is "
          "always kept after an error");

// gateway
ABSL_FLAG(std::string, ndx_gateway, NDX_GATEWAY_BINARY, "the ndx-gateway binary");
ABSL_FLAG(int, gw_connections, 16,
          "gateway: REST keep-alive connections, one request in flight each");
ABSL_FLAG(int, gw_rest_seconds, 10, "gateway: duration of the REST phase");
ABSL_FLAG(bool, gw_postgres, true,
          "gateway: start a PostgreSQL server of its own (else DATABASE_URL is a closed port)");
ABSL_FLAG(int, gw_threads, 2, "gateway: NDX_GATEWAY_THREADS");
ABSL_FLAG(int, gw_workers, 2, "gateway: ndx-worker processes");
ABSL_FLAG(int, gw_worker_slots, 256, "gateway: EXECUTION_WORKER_CONCURRENCY of each worker");
ABSL_FLAG(int, gw_clients, 1000, "gateway: Socket.IO clients, one execution each");
ABSL_FLAG(int, gw_steps, 5, "gateway: wait + set pairs of each followed execution");
ABSL_FLAG(int, gw_wait_ms, 400, "gateway: duration of each wait node (ms)");
ABSL_FLAG(std::string, gw_script, NDX_SOURCE_DIR "/bench/gateway/sio_clients.js",
          "gateway: the Socket.IO client driver");
ABSL_FLAG(std::string, gw_node_path, NDX_SOURCE_DIR "/tests/e2e/node_modules",
          "gateway: NODE_PATH with socket.io-client (npm ci --prefix tests/e2e)");

// chaos and soak
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "chaos: how long the load runs (default 5m); soak: how long it runs (default 10m)");
ABSL_FLAG(absl::Duration, pg_outage, absl::Seconds(20), "chaos: how long PostgreSQL stays down");
ABSL_FLAG(absl::Duration, fault_interval, absl::Seconds(5), "chaos: time between two faults");
ABSL_FLAG(double, chaos_rate, 10, "chaos: executions/s started over gRPC");
ABSL_FLAG(int, chaos_sio_clients, 4,
          "chaos: Socket.IO clients, each starting and following an execution a second");
ABSL_FLAG(int, chaos_completion_ttl, 60, "chaos: EXECUTION_COMPLETION_TTL (s) of the services");
ABSL_FLAG(uint32_t, chaos_seed, 1, "chaos: seed of the choice of workers to kill");
ABSL_FLAG(double, soak_fraction, 0.7, "soak: fraction of the probed maximum throughput offered");
ABSL_FLAG(double, soak_rate, 0, "soak: executions/s offered instead of probing (0 = probe)");
ABSL_FLAG(absl::Duration, soak_probe, absl::Seconds(15),
          "soak: how long the maximum throughput probe starts executions");
ABSL_FLAG(absl::Duration, soak_sample, absl::ZeroDuration(),
          "soak: time between samples (default: a twentieth of --duration, at least 5 s)");
ABSL_FLAG(int, soak_workers, 2, "soak: ndx-worker processes");
ABSL_FLAG(int, soak_worker_slots, 32, "soak: EXECUTION_WORKER_CONCURRENCY of each worker");

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench] %s\n", message.c_str());
}

std::string LoadAverage() {
  return std::string(absl::StripTrailingAsciiWhitespace(testing::ReadFile("/proc/loadavg")));
}

// ndx-queue as a child process, configured by environment variables like in production. The
// database is never reached by the queue path: any valid PostgreSQL URL will do (its health
// probe just reports it unreachable).
class NdxQueueProcess {
 public:
  NdxQueueProcess() = default;
  NdxQueueProcess(const NdxQueueProcess&) = delete;
  NdxQueueProcess& operator=(const NdxQueueProcess&) = delete;
  ~NdxQueueProcess() {
    if (!process_.Running()) return;
    process_.Signal(SIGTERM);
    if (!process_.WaitFor(absl::Seconds(10)).ok()) {
      process_.Signal(SIGKILL);
      process_.Wait();
    }
  }

  absl::Status Start(const std::string& binary, const std::string& redis_url,
                     const std::string& queue, const std::string& log_dir) {
    port_ = testing::FreePort();
    const int metrics_port = testing::FreePort();
    NDX_RETURN_IF_ERROR(
        process_.Start({binary}, log_dir + "/ndx-queue.log",
                       {{"REDIS_URL", redis_url},
                        {"DATABASE_URL", "postgresql://ndx:ndx@127.0.0.1:1/ndx"},
                        {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", port_)},
                        {"NDX_QUEUE_METRICS_ADDR", absl::StrCat("127.0.0.1:", metrics_port)},
                        {"NDX_QUEUE", queue},
                        {"NDX_LOG_LEVEL", "warn"}}));
    // Up when it answers a health check, whatever the answer.
    const bool up = testing::WaitUntil(
        [&] {
          return !process_.Running() ||
                 testing::CheckHealth(target(), "", absl::Milliseconds(200)).ok();
        },
        absl::Seconds(20), absl::Milliseconds(50));
    if (!up || !process_.Running()) {
      return absl::InternalError(absl::StrCat("ndx-queue (", binary, ") did not come up:\n",
                                              testing::ReadFile(process_.log_path())));
    }
    return absl::OkStatus();
  }

  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  int pid() const { return process_.pid(); }

 private:
  testing::ChildProcess process_;
  int port_ = 0;
};

absl::StatusOr<std::vector<std::pair<int, int>>> ParseSettings(const std::string& text) {
  std::vector<std::pair<int, int>> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> pc = absl::StrSplit(item, 'x');
    int procs = 0, concurrency = 0;
    if (pc.size() != 2 || !absl::SimpleAtoi(pc[0], &procs) ||
        !absl::SimpleAtoi(pc[1], &concurrency) || procs < 1 || concurrency < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--bullmq_process: \"", item, "\" is not PROCSxCONCURRENCY"));
    }
    out.emplace_back(procs, concurrency);
  }
  return out;
}

// Everything one run needs.
struct Bench {
  NdxQueueBench* ndx;
  BullmqPeer* bullmq;  // null with --skip_bullmq
  NdxQueueProcess* server;
  int redis_port;
};

// One run: each measurement type for ndx, then for BullMQ, before the next type (so that load from
// elsewhere on the machine hits both sides alike).
absl::StatusOr<std::vector<Json>> RunOnce(const Bench& b) {
  const std::vector<std::string> phases =
      absl::StrSplit(absl::GetFlag(FLAGS_phases), ',', absl::SkipEmpty());
  auto enabled = [&](const char* phase) {
    return std::find(phases.begin(), phases.end(), phase) != phases.end();
  };
  std::vector<Json> records;
  auto add = [&](absl::StatusOr<Json> r) -> absl::Status {
    if (!r.ok()) return r.status();
    Progress(r->dump());
    records.push_back(*std::move(r));
    return absl::OkStatus();
  };
  auto peer = [&](const std::string& mode, std::vector<std::string> args) -> absl::Status {
    if (b.bullmq == nullptr) return absl::OkStatus();
    Progress(absl::StrCat("BullMQ ", mode, " ", absl::StrJoin(args, " ")));
    NDX_ASSIGN_OR_RETURN(std::vector<Json> rs, b.bullmq->Run(mode, args));
    for (Json& r : rs) NDX_RETURN_IF_ERROR(add(std::move(r)));
    return absl::OkStatus();
  };
  const std::string jobs = absl::StrCat(absl::GetFlag(FLAGS_jobs));
  const std::string batch = absl::StrCat(absl::GetFlag(FLAGS_batch));
  const int inflight = absl::GetFlag(FLAGS_inflight);

  if (enabled("throughput")) {
    // 1. Enqueue throughput in batches (ndx: RedisQueue::Enqueue; BullMQ: addBulk).
    Progress("ndx enqueue-bulk");
    NDX_RETURN_IF_ERROR(add(b.ndx->EnqueueBulk()));
    // 2. No-op processing of the jobs just enqueued (ndx: Claim + Complete batches).
    Progress("ndx process");
    NDX_RETURN_IF_ERROR(add(b.ndx->Process()));
    NDX_RETURN_IF_ERROR(peer("enqueue-bulk", {"--n", jobs, "--batch", batch, "--inflight",
                                              absl::GetFlag(FLAGS_bullmq_bulk_inflight)}));
    NDX_ASSIGN_OR_RETURN(auto settings, ParseSettings(absl::GetFlag(FLAGS_bullmq_process)));
    for (const auto& [procs, concurrency] : settings) {
      NDX_RETURN_IF_ERROR(peer("process", {"--n", jobs, "--procs", absl::StrCat(procs),
                                           "--concurrency", absl::StrCat(concurrency)}));
    }
  }
  if (enabled("single")) {
    // 3. Single-request enqueue (ndx: ExecuteWorkflow through ndx-queue; BullMQ: Queue.add),
    // sequential, then `inflight` outstanding.
    const int64_t sequential = absl::GetFlag(FLAGS_sequential_jobs);
    const int64_t parallel = absl::GetFlag(FLAGS_grpc_jobs);
    Progress("ndx enqueue-single over gRPC, sequential");
    NDX_RETURN_IF_ERROR(
        add(b.ndx->EnqueueGrpc(b.server->target(), 1, sequential, b.server->pid())));
    NDX_RETURN_IF_ERROR(
        peer("enqueue-single", {"--n", absl::StrCat(sequential), "--inflight", "1"}));
    Progress(absl::StrCat("ndx enqueue-single over gRPC, ", inflight, " in flight"));
    NDX_RETURN_IF_ERROR(
        add(b.ndx->EnqueueGrpc(b.server->target(), inflight, parallel, b.server->pid())));
    NDX_RETURN_IF_ERROR(peer(
        "enqueue-single", {"--n", absl::StrCat(parallel), "--inflight", absl::StrCat(inflight)}));
  }
  if (enabled("latency")) {
    // 4. Pickup latency at a fixed rate, consumers idle and blocked.
    Progress("ndx latency");
    NDX_RETURN_IF_ERROR(add(b.ndx->Latency()));
    NDX_RETURN_IF_ERROR(
        peer("latency", {"--rate", absl::StrCat(absl::GetFlag(FLAGS_rate)), "--seconds",
                         absl::StrCat(absl::GetFlag(FLAGS_latency_seconds)), "--concurrency",
                         absl::StrCat(absl::GetFlag(FLAGS_bullmq_latency_concurrency))}));
  }
  if (enabled("memory")) {
    // 5. Redis memory per waiting job (and, for ndx, after its TTL).
    Progress("ndx memory");
    NDX_RETURN_IF_ERROR(add(b.ndx->Memory()));
    NDX_RETURN_IF_ERROR(
        peer("memory", {"--n", absl::StrCat(absl::GetFlag(FLAGS_memory_jobs)), "--batch", batch}));
  }
  if (enabled("evalsha")) {
    // 6. The physical limit: EVALSHA of a script that does nothing.
    Progress("redis-benchmark EVALSHA");
    NDX_RETURN_IF_ERROR(b.ndx->control().Command({"FLUSHALL"}).status());
    for (int pipeline : {1, 16}) {
      NDX_RETURN_IF_ERROR(add(EvalshaRate(b.ndx->control(), b.redis_port, pipeline)));
    }
  }
  return records;
}

// Both runs side by side: one line per measurement, the result "pass" only when every run passed.
std::string FormatSummary(const std::vector<std::vector<ReportRow>>& runs) {
  std::string out = "| measurement | target |";
  std::string rule = "|---|---|";
  for (size_t i = 0; i < runs.size(); ++i) {
    absl::StrAppend(&out, " run ", i + 1, " ndx | run ", i + 1, " BullMQ | run ", i + 1,
                    " ratio |");
    rule += "---|---|---|";
  }
  out += " result |\n" + rule + "---|\n";
  for (const ReportRow& row : runs.front()) {
    absl::StrAppend(&out, "| ", row.measurement, " | ", row.target, " |");
    std::string result = row.result;
    for (const std::vector<ReportRow>& run : runs) {
      const ReportRow* same = nullptr;
      for (const ReportRow& r : run) {
        if (r.measurement == row.measurement) same = &r;
      }
      if (same == nullptr) {
        out += " | | |";
        continue;
      }
      absl::StrAppend(&out, " ", same->ndx, " | ", same->bullmq, " | ", same->ratio, " |");
      if (same->result == "FAIL") result = "FAIL";
    }
    absl::StrAppend(&out, " ", result, " |\n");
  }
  return out;
}

absl::StatusOr<bool> RunQueueBench(const std::string& dir) {
  const absl::Time began = absl::Now();
  Progress(absl::StrCat("logs in ", dir, "; load average ", LoadAverage()));

  testing::RedisServer redis;  // loopback, free port, no RDB, no AOF
  NDX_RETURN_IF_ERROR(redis.Start());
  NdxBenchOptions options;
  options.redis_url = redis.url();
  options.jobs = absl::GetFlag(FLAGS_jobs);
  options.batch = absl::GetFlag(FLAGS_batch);
  options.enqueue_threads = absl::GetFlag(FLAGS_enqueue_threads);
  options.consumers = absl::GetFlag(FLAGS_consumers);
  options.claim_batch = absl::GetFlag(FLAGS_claim_batch);
  options.rate = absl::GetFlag(FLAGS_rate);
  options.latency_time = absl::Seconds(absl::GetFlag(FLAGS_latency_seconds));
  options.memory_jobs = absl::GetFlag(FLAGS_memory_jobs);
  options.memory_ttl = absl::Seconds(absl::GetFlag(FLAGS_memory_ttl_seconds));
  if (options.jobs < 1 || options.batch < 1 || options.enqueue_threads < 1 ||
      options.consumers < 1 || options.claim_batch < 1 || options.rate <= 0 ||
      options.memory_jobs < 1 || absl::GetFlag(FLAGS_inflight) < 1) {
    return absl::InvalidArgumentError("sizes, counts and rates must be positive");
  }

  // The job, the same bytes for both systems.
  NDX_ASSIGN_OR_RETURN(std::string payload, WorkflowPayload(options.queue));
  const std::string payload_file = dir + "/payload.json";
  {
    std::ofstream out(payload_file, std::ios::binary);
    out << payload;
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", payload_file));
  }
  Progress(absl::StrCat("job payload: ", payload.size(), " bytes (", payload_file, ")"));

  NdxQueueBench ndx(options, payload);
  NDX_RETURN_IF_ERROR(ndx.Init());
  std::unique_ptr<BullmqPeer> bullmq;
  if (!absl::GetFlag(FLAGS_skip_bullmq)) {
    bullmq = std::make_unique<BullmqPeer>(
        BullmqPeer::Options{.node = absl::GetFlag(FLAGS_node),
                            .script = absl::GetFlag(FLAGS_peer_dir) + "/bench.js",
                            .redis_port = redis.port(),
                            .payload_file = payload_file,
                            .log_dir = dir});
    NDX_RETURN_IF_ERROR(bullmq->Check());
  }
  NdxQueueProcess server;
  NDX_RETURN_IF_ERROR(
      server.Start(absl::GetFlag(FLAGS_ndx_queue), redis.url(), options.queue, dir));

  std::ofstream json_out;
  if (!absl::GetFlag(FLAGS_json_out).empty()) {
    json_out.open(absl::GetFlag(FLAGS_json_out), std::ios::app);
    if (!json_out) return absl::InternalError("cannot open --json_out");
  }
  std::vector<std::vector<ReportRow>> runs;
  bool met = true;
  for (int run = 1; run <= absl::GetFlag(FLAGS_runs); ++run) {
    if (absl::Now() - began > absl::Minutes(absl::GetFlag(FLAGS_max_minutes))) {
      Progress(absl::StrCat("stopping before run ", run, ": over --max_minutes"));
      break;
    }
    const std::string load_before = LoadAverage();
    Progress(absl::StrCat("run ", run, ", load average ", load_before));
    NDX_ASSIGN_OR_RETURN(std::vector<Json> records,
                         RunOnce({&ndx, bullmq.get(), &server, redis.port()}));
    for (Json& r : records) {
      r["run"] = run;
      if (json_out.is_open()) json_out << r.dump() << "\n";
    }
    std::vector<ReportRow> rows = BuildReport(records);
    met = met && AllTargetsMet(rows);
    std::printf("\n### Run %d (load average before: %s; after: %s)\n\n%s\n", run,
                load_before.c_str(), LoadAverage().c_str(), FormatTable(rows).c_str());
    std::fflush(stdout);
    runs.push_back(std::move(rows));
  }
  if (runs.size() > 1) {
    std::printf("### All runs\n\n%s\n", FormatSummary(runs).c_str());
  }
  Progress(absl::StrCat("done in ",
                        absl::FormatDuration(absl::Trunc(absl::Now() - began, absl::Seconds(1)))));
  return met;
}

// --- engine -------------------------------------------------------------------------------------

double Num(const Json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_number() ? it->get<double>() : NAN;
}

absl::StatusOr<bool> RunEngine() {
  Progress(absl::StrCat("engine; load average ", LoadAverage()));
  NDX_ASSIGN_OR_RETURN(std::vector<Json> records,
                       RunEngineBench({.time = absl::Seconds(absl::GetFlag(FLAGS_engine_seconds)),
                                       .items = absl::GetFlag(FLAGS_engine_items)}));
  std::vector<SimpleRow> rows;
  for (const Json& r : records) {
    if (r["mode"] == "engine-run") {
      rows.push_back(
          {"10-node workflow (set, ifElse, merge, code, fast-path and JS expressions), "
           "executions/s, 1 thread, wall clock",
           Thousands(Num(r, "exec_per_s")), "", ""});
      rows.push_back({"the same per CPU-second of that thread (executions/s per core)",
                      Thousands(Num(r, "exec_per_cpu_s")), "", ""});
      rows.push_back({"CPU per execution (µs)", Fixed(Num(r, "us_per_exec_cpu"), 1), "", ""});
      std::string nodes;
      for (const auto& [id, us] : r["node_us_per_exec"].items()) {
        absl::StrAppend(&nodes, nodes.empty() ? "" : ", ", id, " ", Fixed(us.get<double>(), 1));
      }
      rows.push_back({absl::StrCat("time inside each node as the engine reports it (µs per "
                                   "execution; skipped: ",
                                   r.value("skipped", std::string()), ")"),
                      nodes, "", ""});
    }
  }
  for (const Json& r : records) {
    if (r["mode"] != "expression") continue;
    const std::string expr = r["expression"].get<std::string>();
    const std::string what = r["case"] == "js"     ? "JavaScript expression `" + expr + "`"
                             : r["case"] == "fast" ? "fast-path expression `" + expr + "`"
                                                   : "literal value (no expression), for scale";
    rows.push_back(
        {absl::StrCat(what, ": evaluations/s in a Set node, 1 thread (µs each)"),
         absl::StrCat(Thousands(Num(r, "evals_per_s")), " (", Fixed(Num(r, "us_per_eval"), 2), ")"),
         "", ""});
  }
  std::printf("\n### ndx-bench engine (load average after: %s)\n\n%s\n", LoadAverage().c_str(),
              FormatSimpleTable(rows).c_str());
  return true;
}

// --- events -------------------------------------------------------------------------------------

absl::StatusOr<bool> RunEvents(const std::string& dir) {
  Progress(absl::StrCat("events; logs in ", dir, "; load average ", LoadAverage()));
  testing::RedisServer redis;
  NDX_RETURN_IF_ERROR(redis.Start());
  NdxQueueProcess server;
  NDX_RETURN_IF_ERROR(server.Start(absl::GetFlag(FLAGS_ndx_queue), redis.url(), "default", dir));
  EventsBenchOptions o;
  o.redis_url = redis.url();
  o.queue_target = server.target();
  o.queue_pid = server.pid();
  o.rate = absl::GetFlag(FLAGS_event_rate);
  o.executions = absl::GetFlag(FLAGS_event_subscribers);
  o.latency_time = absl::Seconds(absl::GetFlag(FLAGS_event_seconds));
  o.append_time = absl::Seconds(absl::GetFlag(FLAGS_append_seconds));
  o.producers = absl::GetFlag(FLAGS_event_producers);
  const std::string load_before = LoadAverage();
  NDX_ASSIGN_OR_RETURN(std::vector<Json> records, RunEventsBench(o));
  std::vector<SimpleRow> rows;
  bool met = true;
  for (const Json& r : records) {
    if (r["mode"] != "append") continue;
    rows.push_back({absl::StrCat("EventLog::Append, ", r["threads"].get<int>(),
                                 " thread(s), 1 connection each (events/s)"),
                    absl::StrCat(Thousands(Num(r, "events_per_s")), "; Redis ",
                                 Fixed(Num(r, "redis_cpu_us_per_job"), 1), " µs/event at ",
                                 Fixed(Num(r, "redis_cpu_util") * 100, 0), "% of a core"),
                    "", ""});
  }
  for (const Json& r : records) {
    if (r["mode"] != "event-latency") continue;
    const double p99 = Num(r, "p99_ms");
    const bool ok = p99 <= 5 && Num(r, "received") >= Num(r, "events");
    met = met && ok;
    const std::string setting =
        absl::StrCat(Thousands(Num(r, "rate")), " events/s over ", r["subscribers"].get<int>(),
                     " executions, one subscriber each");
    rows.push_back({absl::StrCat("Append-to-client p99 at ", setting, " (ms)"),
                    absl::StrCat(Fixed(p99, 2), " (", Thousands(Num(r, "achieved_rate")),
                                 "/s achieved; received ", Thousands(Num(r, "received")), " of ",
                                 Thousands(Num(r, "events")), ")"),
                    "≤ 5 ms, none lost", ok ? "pass" : "FAIL"});
    rows.push_back(
        {"p50 / p90 / p99.9 / max (ms)",
         absl::StrCat(Fixed(Num(r, "p50_ms"), 2), " / ", Fixed(Num(r, "p90_ms"), 2), " / ",
                      Fixed(Num(r, "p999_ms"), 2), " / ", Fixed(Num(r, "max_ms"), 1)),
         "", ""});
    rows.push_back({"CPU per event (µs): ndx-queue / Redis / ndx-bench (producers + 100 clients)",
                    absl::StrCat(Fixed(Num(r, "queue_cpu_us_per_event"), 1), " / ",
                                 Fixed(Num(r, "redis_cpu_us_per_job"), 1), " / ",
                                 Fixed(Num(r, "bench_cpu_us_per_event"), 1)),
                    "", ""});
    rows.push_back({"CPU used during the phase (cores): ndx-queue / Redis",
                    absl::StrCat(Fixed(Num(r, "queue_cpu_util"), 2), " / ",
                                 Fixed(Num(r, "redis_cpu_util"), 2)),
                    "", ""});
    rows.push_back({"Redis commands per event (incl. inside scripts)",
                    Fixed(Num(r, "redis_commands_per_job"), 1), "", ""});
  }
  std::printf("\n### ndx-bench events (load average before: %s; after: %s)\n\n%s\n",
              load_before.c_str(), LoadAverage().c_str(), FormatSimpleTable(rows).c_str());
  return met;
}

// --- worker / scale -----------------------------------------------------------------------------

std::string Setting(const Json& r) {
  return absl::StrCat(r["procs"].get<int>(), " proc x ", r["concurrency"].get<int>());
}

absl::StatusOr<bool> RunWorker(const std::string& dir) {
  Progress(absl::StrCat("worker; logs in ", dir, "; load average ", LoadAverage()));
  testing::RedisServer redis;
  NDX_RETURN_IF_ERROR(redis.Start());
  WorkerBenchOptions o;
  o.redis_url = redis.url();
  o.worker_binary = absl::GetFlag(FLAGS_ndx_worker);
  o.log_dir = dir;
  o.executions = absl::GetFlag(FLAGS_executions);
  NdxWorkerBench ndx(o);
  NDX_RETURN_IF_ERROR(ndx.Init());
  NDX_ASSIGN_OR_RETURN(std::string payload, LightWorkflowPayload(o.queue));
  const std::string payload_file = dir + "/worker-payload.json";
  {
    std::ofstream out(payload_file, std::ios::binary);
    out << payload;
  }
  Progress(absl::StrCat("job payload: ", payload.size(), " bytes (", payload_file, ")"));
  NDX_ASSIGN_OR_RETURN(auto ndx_settings, ParseSettings(absl::GetFlag(FLAGS_worker_process)));
  NDX_ASSIGN_OR_RETURN(auto bull_settings,
                       ParseSettings(absl::GetFlag(FLAGS_bullmq_worker_process)));
  std::unique_ptr<BullmqPeer> bullmq;
  if (!absl::GetFlag(FLAGS_skip_bullmq)) {
    bullmq = std::make_unique<BullmqPeer>(
        BullmqPeer::Options{.node = absl::GetFlag(FLAGS_node),
                            .script = absl::GetFlag(FLAGS_peer_dir) + "/bench.js",
                            .redis_port = redis.port(),
                            .payload_file = payload_file,
                            .log_dir = dir});
    NDX_RETURN_IF_ERROR(bullmq->Check());
  }
  const std::string load_before = LoadAverage();
  std::vector<Json> nd, bl;
  // Interleaved (ndx settings, then BullMQ's) so that load from elsewhere hits both alike.
  for (const auto& [procs, slots] : ndx_settings) {
    Progress(absl::StrCat("ndx worker ", procs, "x", slots));
    NDX_ASSIGN_OR_RETURN(Json r, ndx.Run(procs, slots));
    nd.push_back(std::move(r));
  }
  if (bullmq != nullptr) {
    for (const auto& [procs, concurrency] : bull_settings) {
      Progress(absl::StrCat("BullMQ worker ", procs, "x", concurrency));
      NDX_ASSIGN_OR_RETURN(
          std::vector<Json> rs,
          bullmq->Run("worker", {"--n", absl::StrCat(o.executions), "--procs", absl::StrCat(procs),
                                 "--concurrency", absl::StrCat(concurrency)}));
      for (Json& r : rs) {
        Progress(r.dump());
        bl.push_back(std::move(r));
      }
    }
  }
  auto best = [](const std::vector<Json>& rs) -> const Json* {
    const Json* b = nullptr;
    for (const Json& r : rs) {
      if (b == nullptr || Num(r, "exec_per_s") > Num(*b, "exec_per_s")) b = &r;
    }
    return b;
  };
  const Json* bn = best(nd);
  const Json* bb = best(bl);
  bool met = true;
  std::vector<ReportRow> rows;
  if (bn != nullptr) {
    ReportRow row{absl::StrCat("10-node executions with per-node checkpoint + events, ",
                               Thousands(o.executions), " pre-filled (executions/s)"),
                  absl::StrCat(Thousands(Num(*bn, "exec_per_s")), " (best: ", Setting(*bn), ")"),
                  "not run",
                  "",
                  "≥ 3x BullMQ",
                  ""};
    if (bb != nullptr) {
      const double ratio = Num(*bn, "exec_per_s") / Num(*bb, "exec_per_s");
      row.bullmq = absl::StrCat(Thousands(Num(*bb, "exec_per_s")), " (best: ", Setting(*bb), ")");
      row.ratio = absl::StrFormat("%.2fx", ratio);
      row.result = ratio >= 3 ? "pass" : "FAIL";
      met = ratio >= 3;
    }
    rows.push_back(row);
    auto cost = [&](std::string what, const char* key, int digits) {
      const double n = Num(*bn, key);
      const double b = bb ? Num(*bb, key) : NAN;
      rows.push_back({std::move(what), Fixed(n, digits), bb ? Fixed(b, digits) : "",
                      bb ? absl::StrFormat("%.2fx", b / n) : "", "", ""});
    };
    cost("Redis CPU per execution, best settings (µs)", "redis_cpu_us_per_exec", 1);
    cost("Worker CPU per execution, best settings (µs; ndx-worker / BullMQ worker processes)",
         "client_cpu_us_per_exec", 1);
    cost("Redis commands per execution (incl. inside scripts)", "redis_commands_per_exec", 1);
    cost("Script calls per execution", "script_calls_per_exec", 2);
  }
  std::printf("\n### ndx-bench worker (load average before: %s; after: %s)\n\n%s\n",
              load_before.c_str(), LoadAverage().c_str(), FormatTable(rows).c_str());
  std::string scaling =
      "| system | processes x slots | executions/s | Redis CPU/exec (µs) | Redis busy (cores) | "
      "worker CPU/exec (µs) | workers busy (cores) | start-up (s) "
      "|\n|---|---|---|---|---|---|---|---|\n";
  auto line = [&](const char* system, const Json& r) {
    absl::StrAppend(
        &scaling, "| ", system, " | ", Setting(r), " | ", Thousands(Num(r, "exec_per_s")), " | ",
        Fixed(Num(r, "redis_cpu_us_per_exec"), 1), " | ", Fixed(Num(r, "redis_cpu_util"), 2), " | ",
        Fixed(Num(r, "client_cpu_us_per_exec"), 1), " | ", Fixed(Num(r, "client_cpu_util"), 2),
        " | ", r.contains("startup_s") ? Fixed(Num(r, "startup_s"), 2) : "-", " |\n");
  };
  for (const Json& r : nd) line("ndx", r);
  for (const Json& r : bl) line("BullMQ", r);
  std::printf("#### Scaling (every setting)\n\n%s\n", scaling.c_str());
  for (const Json& r : nd) {
    if (Num(r, "failed") > 0) {
      Progress(absl::StrCat("ndx run ", Setting(r), ": ", r["failed"].dump(),
                            " executions did not complete"));
      met = false;
    }
  }
  return met;
}
// --- gateway ------------------------------------------------------------------------------------

absl::StatusOr<bool> RunGateway(const std::string& dir) {
  Progress(absl::StrCat("gateway; logs in ", dir, "; load average ", LoadAverage()));
  testing::RedisServer redis;
  NDX_RETURN_IF_ERROR(redis.Start());
  GatewayBenchOptions o;
  o.redis_url = redis.url();
  o.queue_binary = absl::GetFlag(FLAGS_ndx_queue);
  o.worker_binary = absl::GetFlag(FLAGS_ndx_worker);
  o.gateway_binary = absl::GetFlag(FLAGS_ndx_gateway);
  o.node = absl::GetFlag(FLAGS_node);
  o.script = absl::GetFlag(FLAGS_gw_script);
  o.node_path = absl::GetFlag(FLAGS_gw_node_path);
  o.log_dir = dir;
  o.connections = absl::GetFlag(FLAGS_gw_connections);
  o.rest_time = absl::Seconds(absl::GetFlag(FLAGS_gw_rest_seconds));
  o.gateway_threads = absl::GetFlag(FLAGS_gw_threads);
  o.postgres = absl::GetFlag(FLAGS_gw_postgres);
  o.workers = absl::GetFlag(FLAGS_gw_workers);
  o.worker_slots = absl::GetFlag(FLAGS_gw_worker_slots);
  o.clients = absl::GetFlag(FLAGS_gw_clients);
  o.steps = absl::GetFlag(FLAGS_gw_steps);
  o.wait_ms = absl::GetFlag(FLAGS_gw_wait_ms);
  if (!std::filesystem::exists(o.node_path + "/socket.io-client/package.json")) {
    return absl::FailedPreconditionError(
        absl::StrCat("no socket.io-client in ", o.node_path, " (npm ci --prefix tests/e2e)"));
  }
  const std::string load_before = LoadAverage();
  NDX_ASSIGN_OR_RETURN(std::vector<Json> records, RunGatewayBench(o));
  std::vector<SimpleRow> rows;
  bool met = true;
  auto mib = [](const Json& r, const char* k) { return Fixed(Num(r, k) / 1024, 1); };
  for (const Json& r : records) {
    if (r["mode"] == "rest") {
      rows.push_back(
          {absl::StrCat("POST /api/executions (2-node workflow), ", r["connections"].get<int>(),
                        " keep-alive connections, 1 request in flight each (201s/s)"),
           absl::StrCat(Thousands(Num(r, "req_per_s")), " (", Thousands(Num(r, "created")), " in ",
                        Fixed(Num(r, "seconds"), 1), " s; other statuses ",
                        Thousands(Num(r, "other_status")), ")"),
           "", ""});
      rows.push_back({"request latency p50 / p99 (ms)",
                      absl::StrCat(Fixed(Num(r, "p50_ms"), 2), " / ", Fixed(Num(r, "p99_ms"), 2)),
                      "", ""});
      rows.push_back({"gateway CPU per request (µs); gateway busy (cores)",
                      absl::StrCat(Fixed(Num(r, "gateway_cpu_us_per_req"), 1), "; ",
                                   Fixed(Num(r, "gateway_cpu_util"), 2)),
                      "", ""});
    } else if (r["mode"] == "socketio") {
      const bool ok = Num(r, "failed") == 0 && Num(r, "start_errors") == 0 &&
                      Num(r, "connected") == Num(r, "clients");
      met = met && ok;
      rows.push_back(
          {absl::StrCat(Thousands(Num(r, "clients")),
                        " Socket.IO clients (websocket), each following its own "
                        "execution: event latency p50 / p99 (ms)"),
           absl::StrCat(Fixed(Num(r, "p50_ms"), 1), " / ", Fixed(Num(r, "p99_ms"), 1), " (p90 ",
                        Fixed(Num(r, "p90_ms"), 1), ", max ", Fixed(Num(r, "max_ms"), 1), ")"),
           "every execution followed to completed", ok ? "pass" : "FAIL"});
      rows.push_back(
          {"the same, only events received once all executions had been started: "
           "count, p50 / p99 (ms)",
           absl::StrCat(Thousands(Num(r, "after_start")), ", ",
                        Fixed(Num(r, "after_start_p50_ms"), 1), " / ",
                        Fixed(Num(r, "after_start_p99_ms"), 1)),
           "", ""});
      rows.push_back(
          {"events received / of which live (measured) / replayed at subscribe",
           absl::StrCat(Thousands(Num(r, "events")), " / ", Thousands(Num(r, "measured")), " / ",
                        Thousands(Num(r, "replayed"))),
           "", ""});
      rows.push_back(
          {"connect all (s) / start all (s) / all completed (s)",
           absl::StrCat(Fixed(Num(r, "connect_s"), 1), " / ", Fixed(Num(r, "start_s"), 1), " / ",
                        Fixed(Num(r, "follow_s"), 1)),
           "", ""});
      rows.push_back(
          {"gateway VmRSS (MiB): at start / before clients / all connected / peak / "
           "after disconnect",
           absl::StrCat(mib(r, "rss_kb_start"), " / ", mib(r, "rss_kb_before"), " / ",
                        mib(r, "rss_kb_connected"), " / ", mib(r, "rss_kb_peak"), " / ",
                        mib(r, "rss_kb_after")),
           "", ""});
      rows.push_back(
          {"gateway CPU during the phase (s)", Fixed(Num(r, "gateway_cpu_s"), 1), "", ""});
    }
  }
  std::printf("\n### ndx-bench gateway (load average before: %s; after: %s)\n\n%s\n",
              load_before.c_str(), LoadAverage().c_str(), FormatSimpleTable(rows).c_str());
  return met;
}

// --- chaos and soak ------------------------------------------------------------------------------

absl::StatusOr<bool> RunChaosBench(const std::string& dir) {
  chaos::ChaosOptions o;
  o.queue_binary = absl::GetFlag(FLAGS_ndx_queue);
  o.worker_binary = absl::GetFlag(FLAGS_ndx_worker);
  o.gateway_binary = absl::GetFlag(FLAGS_ndx_gateway);
  o.node = absl::GetFlag(FLAGS_node);
  o.sio_script = NDX_SOURCE_DIR "/tests/chaos/sio_chaos_clients.js";
  o.node_path = absl::GetFlag(FLAGS_gw_node_path);
  o.log_dir = dir;
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  o.load_duration = duration > absl::ZeroDuration() ? duration : absl::Minutes(5);
  o.pg_outage = absl::GetFlag(FLAGS_pg_outage);
  o.fault_interval = absl::GetFlag(FLAGS_fault_interval);
  o.first_fault = o.fault_interval;
  o.grpc_rate = absl::GetFlag(FLAGS_chaos_rate);
  o.sio_clients = absl::GetFlag(FLAGS_chaos_sio_clients);
  o.completion_ttl_s = absl::GetFlag(FLAGS_chaos_completion_ttl);
  o.seed = absl::GetFlag(FLAGS_chaos_seed);
  o.drain_timeout = absl::Seconds(90);
  Progress(absl::StrCat("chaos for ", absl::FormatDuration(o.load_duration), "; logs in ", dir,
                        "; load average ", LoadAverage()));
  NDX_ASSIGN_OR_RETURN(chaos::ChaosReport r, chaos::RunChaos(o));
  std::printf("\n### ndx-bench chaos --duration=%s --pg_outage=%s --fault_interval=%s\n\n%s\n",
              absl::FormatDuration(o.load_duration).c_str(),
              absl::FormatDuration(o.pg_outage).c_str(),
              absl::FormatDuration(o.fault_interval).c_str(), r.Summary().c_str());
  return r.Clean();
}

absl::StatusOr<bool> RunSoakBench(const std::string& dir) {
  SoakOptions o;
  o.queue_binary = absl::GetFlag(FLAGS_ndx_queue);
  o.worker_binary = absl::GetFlag(FLAGS_ndx_worker);
  o.gateway_binary = absl::GetFlag(FLAGS_ndx_gateway);
  o.log_dir = dir;
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  o.duration = duration > absl::ZeroDuration() ? duration : absl::Minutes(10);
  o.fraction = absl::GetFlag(FLAGS_soak_fraction);
  o.rate = absl::GetFlag(FLAGS_soak_rate);
  o.probe = absl::GetFlag(FLAGS_soak_probe);
  const absl::Duration every = absl::GetFlag(FLAGS_soak_sample);
  o.sample_every =
      every > absl::ZeroDuration() ? every : std::max(absl::Seconds(5), o.duration / 20);
  o.workers = absl::GetFlag(FLAGS_soak_workers);
  o.worker_slots = absl::GetFlag(FLAGS_soak_worker_slots);
  Progress(absl::StrCat("soak for ", absl::FormatDuration(o.duration), "; logs in ", dir,
                        "; load average ", LoadAverage()));
  NDX_ASSIGN_OR_RETURN(SoakResult r, RunSoak(o));
  std::printf("\n### ndx-bench soak --duration=%s\n\n%s\n",
              absl::FormatDuration(o.duration).c_str(), FormatSoak(r).c_str());
  return true;
}

}  // namespace
}  // namespace ndx::bench

int main(int argc, char** argv) {
  // Debian's abseil is built with Mutex deadlock detection on: every lock updates a process-wide
  // lock graph (GraphCycles) under an internal spin lock, 1-2% of CPU (bench/README.md), and
  // under TSan that spin lock is invisible, so the graph's updates are reported as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "ndx-bench queue|engine|events|worker|scale|gateway|chaos|soak [--flags]: ndx against "
      "BullMQ 5 on one local redis-server, the engine, events and workers on their own, faults "
      "under load, and a long soak (bench/README.md)");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() == 2 ? args[1] : "";
  if (command != "queue" && command != "engine" && command != "events" && command != "worker" &&
      command != "scale" && command != "gateway" && command != "chaos" && command != "soak") {
    std::fprintf(stderr,
                 "usage: ndx-bench queue|engine|events|worker|scale|gateway|chaos|soak [--flags]  "
                 "(--help lists them)\n");
    return 2;
  }
  // SpiderMonkey, before any thread starts (the engine subcommand runs JavaScript).
  if (command == "engine") ndx::engine::InitJsEngine();
  const std::string dir = ndx::testing::MakeTempDir("ndx-bench");
  absl::StatusOr<bool> met = command == "queue"     ? ndx::bench::RunQueueBench(dir)
                             : command == "engine"  ? ndx::bench::RunEngine()
                             : command == "events"  ? ndx::bench::RunEvents(dir)
                             : command == "gateway" ? ndx::bench::RunGateway(dir)
                             : command == "chaos"   ? ndx::bench::RunChaosBench(dir)
                             : command == "soak"    ? ndx::bench::RunSoakBench(dir)
                                                    : ndx::bench::RunWorker(dir);
  if (!met.ok()) {
    std::fprintf(stderr, "ndx-bench: %s\n(logs in %s)\n", met.status().ToString().c_str(),
                 dir.c_str());
    return 1;
  }
  if (!absl::GetFlag(FLAGS_keep_logs)) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return *met ? 0 : 3;
}
