#include "bench/soak_bench.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/http_conn.h"
#include "bench/redis_probe.h"
#include "bench/worker_bench.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/redis/redis_url.h"
#include "libs/common/status_macros.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench soak] %s\n", message.c_str());
}

std::string LoadAverage() {
  return std::string(absl::StripTrailingAsciiWhitespace(testing::ReadFile("/proc/loadavg")));
}

class Service {
 public:
  ~Service() {
    if (!p.Running()) return;
    p.Signal(SIGTERM);
    if (!p.WaitFor(absl::Seconds(15)).ok()) {
      p.Signal(SIGKILL);
      p.Wait();
    }
  }
  testing::ChildProcess p;
};

// The light workflow with its history saved (the soak covers the PostgreSQL path too).
v1::ExecuteWorkflowRequest SoakRequest() {
  v1::ExecuteWorkflowRequest r = LightWorkflowRequest("default");
  r.mutable_workflow()->mutable_settings()->set_save_execution_to_database(true);
  r.mutable_workflow()->set_id("wf-soak");
  return r;
}

// The same workflow as NodeDrop JSON for the REST route.
std::string SoakRestBody() {
  const v1::ExecuteWorkflowRequest r = SoakRequest();
  Json nodes = Json::array(), connections = Json::array();
  for (const v1::Node& n : r.workflow().nodes()) {
    nodes.push_back(
        {{"id", n.id()},
         {"name", n.name()},
         {"type", n.type()},
         {"parameters",
          n.parameters_json().empty() ? Json::object() : Json::parse(n.parameters_json())}});
  }
  for (const v1::Connection& c : r.workflow().connections()) {
    connections.push_back({{"id", c.id()},
                           {"sourceNodeId", c.source_node_id()},
                           {"sourceOutput", c.source_output().empty() ? "main" : c.source_output()},
                           {"targetNodeId", c.target_node_id()},
                           {"targetInput", "main"}});
  }
  Json wf = {{"id", "wf-soak"},
             {"name", "soak"},
             {"nodes", nodes},
             {"connections", connections},
             {"settings", {{"saveExecutionToDatabase", true}}}};
  return Json{{"workflowId", "wf-soak"},
              {"triggerNodeId", r.workflow().nodes(0).id()},
              {"triggerData", Json::parse(r.trigger_data_json())},
              {"workflowData", wf}}
      .dump();
}

absl::StatusOr<int64_t> Backlog(v1::QueueService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetQueueStatsRequest req;
  req.set_queue("default");
  v1::GetQueueStatsResponse resp;
  grpc::Status s = stub.GetQueueStats(&ctx, req, &resp);
  if (!s.ok() || resp.queues_size() == 0) {
    return absl::UnavailableError(absl::StrCat("GetQueueStats: ", s.error_message()));
  }
  return resp.queues(0).waiting() + resp.queues(0).active() + resp.queues(0).delayed();
}

absl::Status WaitDrained(v1::QueueService::Stub& stub, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<int64_t> b = Backlog(stub);
    if (b.ok() && *b == 0) return absl::OkStatus();
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("executions not drained in ", absl::FormatDuration(timeout), ": backlog ",
                       b.ok() ? absl::StrCat(*b) : b.status().ToString()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace

absl::StatusOr<SoakResult> RunSoak(const SoakOptions& o) {
  SoakResult result;
  testing::RedisServer redis;
  NDX_RETURN_IF_ERROR(redis.Start());
  testing::PostgresServer pg;
  NDX_RETURN_IF_ERROR(pg.Start());
  NDX_RETURN_IF_ERROR(pg.CreateDatabase("ndx"));
  const int queue_port = testing::FreePort();
  const int gateway_port = testing::FreePort();
  std::map<std::string, std::string> env = {
      {"REDIS_URL", redis.url()},
      {"DATABASE_URL", pg.url("ndx")},
      {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_QUEUE_METRICS_ADDR", "127.0.0.1:0"},
      {"NDX_WORKER_ADDR", "127.0.0.1:0"},
      {"NDX_WORKER_METRICS_ADDR", "127.0.0.1:0"},
      {"NDX_GATEWAY_ADDR", absl::StrCat("127.0.0.1:", gateway_port)},
      {"NDX_QUEUE_SERVER", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_AUTH", "none"},
      {"NDX_EXECUTIONS_PER_MINUTE", "0"},
      {"EXECUTION_WORKER_CONCURRENCY", absl::StrCat(o.worker_slots)},
      {"EXECUTION_COMPLETION_TTL", absl::StrCat(o.completion_ttl_s)},
      {"NDX_LOG_LEVEL", "warn"}};
  Service queue, gateway;
  std::vector<std::unique_ptr<Service>> workers;
  NDX_RETURN_IF_ERROR(queue.p.Start({o.queue_binary}, o.log_dir + "/ndx-queue.log", env));
  for (int i = 0; i < o.workers; ++i) {
    env["NDX_WORKER_ID"] = absl::StrCat("soak-", i);
    workers.push_back(std::make_unique<Service>());
    NDX_RETURN_IF_ERROR(workers.back()->p.Start(
        {o.worker_binary}, absl::StrCat(o.log_dir, "/ndx-worker-", i, ".log"), env));
  }
  NDX_RETURN_IF_ERROR(gateway.p.Start({o.gateway_binary}, o.log_dir + "/ndx-gateway.log", env));
  const bool up = testing::WaitUntil(
      [&] {
        auto h = testing::HttpGet(gateway_port, "/health", absl::Milliseconds(500));
        return !gateway.p.Running() ||
               (h.ok() && h->body.find("\"status\":\"ok\"") != std::string::npos);
      },
      absl::Seconds(30), absl::Milliseconds(100));
  if (!up || !gateway.p.Running()) {
    return absl::InternalError(absl::StrCat("the suite did not come up; logs in ", o.log_dir));
  }
  const std::string queue_target = absl::StrCat("127.0.0.1:", queue_port);
  auto channel = grpc::CreateChannel(queue_target, grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::QueueService::Stub> control = v1::QueueService::NewStub(channel);
  NDX_ASSIGN_OR_RETURN(redis::RedisOptions ro, redis::ParseRedisUrl(redis.url()));
  redis::RedisConnection redis_conn(ro);
  const v1::ExecuteWorkflowRequest request = SoakRequest();
  const std::string rest_request = HttpRequestText("POST", "/api/executions", SoakRestBody());
  {  // one of each first: both paths must work
    grpc::ClientContext ctx;
    v1::ExecuteWorkflowResponse resp;
    grpc::Status s = control->ExecuteWorkflow(&ctx, request, &resp);
    if (!s.ok()) return absl::InternalError(absl::StrCat("ExecuteWorkflow: ", s.error_message()));
    HttpConn c;
    NDX_RETURN_IF_ERROR(c.Connect(gateway_port));
    NDX_ASSIGN_OR_RETURN(auto r, c.Exchange(rest_request));
    if (r.first != 201) {
      return absl::InternalError(absl::StrCat("POST /api/executions: ", r.first, " ", r.second));
    }
    NDX_RETURN_IF_ERROR(WaitDrained(*control, absl::Seconds(30)));
  }
  result.load_before = LoadAverage();

  // 1. Probe the maximum: back-to-back starts, then the time until all of them ended.
  double rate = o.rate;
  if (rate <= 0) {
    Progress(absl::StrCat("probing the maximum throughput: ", o.probe_threads,
                          " gRPC clients back to back for ", absl::FormatDuration(o.probe)));
    std::atomic<int64_t> started{0};
    const absl::Time begin = absl::Now();
    const absl::Time end = begin + o.probe;
    std::vector<std::thread> ts;
    for (int i = 0; i < o.probe_threads; ++i) {
      ts.emplace_back([&] {
        auto stub = v1::QueueService::NewStub(channel);
        while (absl::Now() < end) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          v1::ExecuteWorkflowResponse resp;
          if (stub->ExecuteWorkflow(&ctx, request, &resp).ok()) started.fetch_add(1);
        }
      });
    }
    for (std::thread& t : ts) t.join();
    NDX_RETURN_IF_ERROR(WaitDrained(*control, absl::Minutes(10)));
    result.probe_seconds = absl::ToDoubleSeconds(absl::Now() - begin);
    result.probe_executions = started.load();
    result.max_rate = result.probe_executions / result.probe_seconds;
    rate = result.max_rate * o.fraction;
    Progress(absl::StrFormat("maximum %.0f executions/s (%d in %.1f s); soaking at %.0f /s",
                             result.max_rate, result.probe_executions, result.probe_seconds, rate));
  }
  result.target_rate = rate;

  // 2. Soak: open loop at `rate`; thread k starts executions n = k, k + K, ... at their due time.
  constexpr int kThreads = 8;
  const int rest_every = o.rest_share > 0 ? std::max(1, static_cast<int>(1 / o.rest_share)) : 0;
  std::atomic<int64_t> started{0}, failed{0};
  std::atomic<bool> stop{false};
  const absl::Time begin = absl::Now();
  const absl::Time end = begin + o.duration;
  std::vector<std::thread> ts;
  for (int k = 0; k < kThreads; ++k) {
    ts.emplace_back([&, k] {
      auto stub = v1::QueueService::NewStub(channel);
      auto rest = std::make_unique<HttpConn>();
      bool rest_ok = rest->Connect(gateway_port).ok();
      for (int64_t n = k; !stop; n += kThreads) {
        const absl::Time due = begin + absl::Seconds(n / rate);
        if (due >= end) return;
        if (due > absl::Now()) absl::SleepFor(due - absl::Now());
        bool ok = false;
        if (rest_every > 0 && n % rest_every == 0) {
          if (!rest_ok) {
            rest = std::make_unique<HttpConn>();
            rest_ok = rest->Connect(gateway_port).ok();
          }
          if (rest_ok) {
            absl::StatusOr<std::pair<int, std::string>> r = rest->Exchange(rest_request);
            ok = r.ok() && r->first == 201;
            if (!r.ok()) rest_ok = false;
          }
        } else {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          v1::ExecuteWorkflowResponse resp;
          ok = stub->ExecuteWorkflow(&ctx, request, &resp).ok();
        }
        (ok ? started : failed).fetch_add(1);
      }
    });
  }
  auto sample = [&]() {
    SoakSample s;
    s.t_s = absl::ToDoubleSeconds(absl::Now() - begin);
    s.started = started.load();
    s.failed_starts = failed.load();
    s.backlog = Backlog(*control).value_or(-1);
    s.queue_kb = RssKb(queue.p.pid());
    s.gateway_kb = RssKb(gateway.p.pid());
    s.redis_kb = RssKb(redis.pid());
    for (auto& w : workers) s.worker_kb.push_back(RssKb(w->p.pid()));
    absl::StatusOr<ServerCounters> c = ReadCounters(redis_conn);
    if (c.ok()) {
      s.redis_used_memory = c->used_memory;
      s.redis_keys = c->keys;
    }
    Progress(absl::StrFormat(
        "t=%.0fs started %d backlog %d queue %d KiB gateway %d KiB redis %d KiB (used_memory "
        "%.1f MiB, %d keys)",
        s.t_s, s.started, s.backlog, s.queue_kb, s.gateway_kb, s.redis_kb,
        s.redis_used_memory / 1048576.0, s.redis_keys));
    result.samples.push_back(std::move(s));
  };
  sample();
  for (absl::Time next = begin + o.sample_every; next <= end; next += o.sample_every) {
    absl::SleepFor(next - absl::Now());
    sample();
  }
  stop = true;
  for (std::thread& t : ts) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  absl::Status drained = WaitDrained(*control, absl::Minutes(5));
  result.achieved_rate = started.load() / seconds;
  result.load_after = LoadAverage();
  if (!drained.ok()) return drained;
  for (auto& w : workers) {
    if (!w->p.Running()) return absl::InternalError("an ndx-worker exited during the soak");
  }
  if (!queue.p.Running() || !gateway.p.Running()) {
    return absl::InternalError("ndx-queue or ndx-gateway exited during the soak");
  }
  return result;
}

std::string FormatSoak(const SoakResult& r) {
  auto mib = [](int64_t kb) { return Fixed(kb / 1024.0, 1); };
  std::string out = absl::StrFormat(
      "offered %.0f executions/s (%s), achieved %.0f /s; load average before: %s; after: %s\n\n",
      r.target_rate,
      r.max_rate > 0 ? absl::StrFormat("70%% of the probed maximum %.0f /s: %d executions in "
                                       "%.1f s",
                                       r.max_rate, r.probe_executions, r.probe_seconds)
                     : "set by --soak_rate",
      r.achieved_rate, r.load_before, r.load_after);
  if (r.samples.empty()) return out;
  absl::StrAppend(&out, "| t (s) | started | backlog | ndx-queue RSS (MiB) | ");
  for (size_t i = 0; i < r.samples[0].worker_kb.size(); ++i) {
    absl::StrAppend(&out, "ndx-worker-", i, " RSS | ");
  }
  absl::StrAppend(&out,
                  "ndx-gateway RSS | redis-server RSS | Redis used_memory (MiB) | Redis keys |\n|");
  for (size_t i = 0; i < 8 + r.samples[0].worker_kb.size(); ++i) absl::StrAppend(&out, "---|");
  absl::StrAppend(&out, "\n");
  for (const SoakSample& s : r.samples) {
    absl::StrAppend(&out, "| ", Fixed(s.t_s, 0), " | ", Thousands(s.started), " | ",
                    Thousands(s.backlog), " | ", mib(s.queue_kb), " | ");
    for (int64_t w : s.worker_kb) absl::StrAppend(&out, mib(w), " | ");
    absl::StrAppend(&out, mib(s.gateway_kb), " | ", mib(s.redis_kb), " | ",
                    Fixed(s.redis_used_memory / 1048576.0, 1), " | ", Thousands(s.redis_keys),
                    " |\n");
  }
  // Growth after the warm-up (a fifth of the run): the last sample minus the first one at or
  // after it.
  const double warm = r.samples.back().t_s / 5;
  const SoakSample* base = &r.samples.back();
  for (const SoakSample& s : r.samples) {
    if (s.t_s >= warm) {
      base = &s;
      break;
    }
  }
  const SoakSample& last = r.samples.back();
  auto growth = [](int64_t from, int64_t to, double scale, const char* unit) {
    return absl::StrFormat("%+.1f %s (%+.1f%%)", (to - from) / scale, unit,
                           from > 0 ? 100.0 * (to - from) / from : 0.0);
  };
  absl::StrAppend(&out, "\nfrom t=", Fixed(base->t_s, 0), " s to t=", Fixed(last.t_s, 0),
                  " s: ndx-queue ", growth(base->queue_kb, last.queue_kb, 1024, "MiB"));
  for (size_t i = 0; i < last.worker_kb.size() && i < base->worker_kb.size(); ++i) {
    absl::StrAppend(&out, ", ndx-worker-", i, " ",
                    growth(base->worker_kb[i], last.worker_kb[i], 1024, "MiB"));
  }
  absl::StrAppend(&out, ", ndx-gateway ", growth(base->gateway_kb, last.gateway_kb, 1024, "MiB"),
                  ", redis-server ", growth(base->redis_kb, last.redis_kb, 1024, "MiB"),
                  ", Redis used_memory ",
                  growth(base->redis_used_memory, last.redis_used_memory, 1048576, "MiB"), "\n");
  return out;
}

}  // namespace ndx::bench
