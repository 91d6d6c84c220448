#include "bench/gateway_bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/http_conn.h"
#include "libs/common/status_macros.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/postgres_server.h"

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench] %s\n", message.c_str());
}

// trigger -> set, not saved to the database.
std::string SmallExecuteBody() {
  Json nodes = Json::array();
  nodes.push_back({{"id", "t"},
                   {"name", "Trigger"},
                   {"type", "manual-trigger"},
                   {"parameters", Json::object()}});
  Json values = Json::array();
  values.push_back({{"keyValue", {{"key", "k"}, {"value", "v"}}}});
  nodes.push_back(
      {{"id", "s"}, {"name", "Set"}, {"type", "set"}, {"parameters", {{"values", values}}}});
  Json connections = Json::array();
  connections.push_back({{"id", "c1"},
                         {"sourceNodeId", "t"},
                         {"sourceOutput", "main"},
                         {"targetNodeId", "s"},
                         {"targetInput", "main"}});
  Json wf = {{"id", "wf-gwbench-rest"},
             {"name", "gateway bench"},
             {"nodes", nodes},
             {"connections", connections},
             {"settings", {{"saveExecutionToDatabase", false}}}};
  return Json{{"workflowId", "wf-gwbench-rest"}, {"triggerNodeId", "t"}, {"workflowData", wf}}
      .dump();
}

class Service {
 public:
  ~Service() {
    if (!p_.Running()) return;
    p_.Signal(SIGTERM);
    if (!p_.WaitFor(absl::Seconds(10)).ok()) {
      p_.Signal(SIGKILL);
      p_.Wait();
    }
  }
  testing::ChildProcess p_;
};

}  // namespace

absl::StatusOr<std::vector<Json>> RunGatewayBench(const GatewayBenchOptions& o) {
  const int queue_port = testing::FreePort();
  const int gateway_port = testing::FreePort();
  // PostgreSQL of its own (history rows are not written: every workflow sets
  // saveExecutionToDatabase false), or a closed port with --gw_postgres=false.
  std::unique_ptr<testing::PostgresServer> pg;
  std::string database_url = "postgresql://ndx:ndx@127.0.0.1:1/ndx";
  if (o.postgres) {
    pg = std::make_unique<testing::PostgresServer>();
    NDX_RETURN_IF_ERROR(pg->Start());
    NDX_RETURN_IF_ERROR(pg->CreateDatabase("ndx"));
    database_url = pg->url("ndx");
  }
  std::map<std::string, std::string> env = {
      {"REDIS_URL", o.redis_url},
      {"DATABASE_URL", database_url},
      {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_QUEUE_METRICS_ADDR", "127.0.0.1:0"},
      {"NDX_WORKER_ADDR", "127.0.0.1:0"},
      {"NDX_WORKER_METRICS_ADDR", "127.0.0.1:0"},
      {"NDX_GATEWAY_ADDR", absl::StrCat("127.0.0.1:", gateway_port)},
      {"NDX_GATEWAY_THREADS", absl::StrCat(o.gateway_threads)},
      {"NDX_QUEUE_SERVER", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_AUTH", "none"},
      {"NDX_EXECUTIONS_PER_MINUTE", "0"},
      {"EXECUTION_WORKER_CONCURRENCY", absl::StrCat(o.worker_slots)},
      {"NDX_LOG_LEVEL", "warn"}};
  Service queue, gateway;
  std::vector<std::unique_ptr<Service>> workers;
  NDX_RETURN_IF_ERROR(queue.p_.Start({o.queue_binary}, o.log_dir + "/ndx-queue.log", env));
  for (int i = 0; i < o.workers; ++i) {
    env["NDX_WORKER_ID"] = absl::StrCat("gwbench-", i);
    workers.push_back(std::make_unique<Service>());
    NDX_RETURN_IF_ERROR(workers.back()->p_.Start(
        {o.worker_binary}, absl::StrCat(o.log_dir, "/ndx-worker-", i, ".log"), env));
  }
  NDX_RETURN_IF_ERROR(gateway.p_.Start({o.gateway_binary}, o.log_dir + "/ndx-gateway.log", env));
  const bool up = testing::WaitUntil(
      [&] {
        auto h = testing::HttpGet(gateway_port, "/health");
        return !gateway.p_.Running() ||
               (h.ok() && h->body.find("\"status\":\"ok\"") != std::string::npos);
      },
      absl::Seconds(30), absl::Milliseconds(100));
  if (!up || !gateway.p_.Running()) {
    return absl::InternalError(absl::StrCat("ndx-gateway did not come up:\n",
                                            testing::ReadFile(o.log_dir + "/ndx-gateway.log")));
  }
  const int gw = gateway.p_.pid();
  std::vector<Json> records;
  const int64_t rss_start = RssKb(gw);

  // 1. REST.
  {
    const std::string request = HttpRequestText("POST", "/api/executions", SmallExecuteBody());
    {  // one request first: the answer must be a 201
      HttpConn c;
      NDX_RETURN_IF_ERROR(c.Connect(gateway_port));
      NDX_ASSIGN_OR_RETURN(auto r, c.Exchange(request));
      if (r.first != 201) {
        return absl::InternalError(absl::StrCat("POST /api/executions: ", r.first, " ", r.second));
      }
    }
    Progress(absl::StrCat("REST: ", o.connections, " keep-alive connections for ",
                          absl::FormatDuration(o.rest_time)));
    std::atomic<int64_t> ok{0}, bad{0};
    std::atomic<bool> failed{false};
    std::vector<std::vector<double>> lat(o.connections);
    const double gw_cpu0 = PidCpuUs(gw).value_or(0);
    const int64_t start = MonotonicNs();
    const int64_t end = start + absl::ToInt64Nanoseconds(o.rest_time);
    std::vector<std::thread> ts;
    for (int t = 0; t < o.connections; ++t) {
      ts.emplace_back([&, t] {
        HttpConn c;
        if (!c.Connect(gateway_port).ok()) {
          failed = true;
          return;
        }
        while (MonotonicNs() < end && !failed) {
          const int64_t t0 = MonotonicNs();
          auto r = c.Exchange(request);
          if (!r.ok()) {
            failed = true;
            return;
          }
          lat[t].push_back((MonotonicNs() - t0) / 1e6);
          (r->first == 201 ? ok : bad).fetch_add(1);
        }
      });
    }
    for (auto& t : ts) t.join();
    const double seconds = (MonotonicNs() - start) / 1e9;
    const double gw_cpu = PidCpuUs(gw).value_or(0) - gw_cpu0;
    if (failed) return absl::InternalError("a REST connection failed");
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    Json r = {{"mode", "rest"},
              {"connections", o.connections},
              {"seconds", seconds},
              {"created", ok.load()},
              {"other_status", bad.load()},
              {"req_per_s", ok.load() / seconds},
              {"p50_ms", PercentileOf(all, 50)},
              {"p99_ms", PercentileOf(all, 99)},
              {"gateway_cpu_us_per_req", gw_cpu / std::max<int64_t>(1, ok + bad)},
              {"gateway_cpu_util", gw_cpu / 1e6 / seconds},
              {"rss_kb_after", RssKb(gw)}};
    Progress(r.dump());
    records.push_back(std::move(r));
    // Let the workers drain the REST executions before the Socket.IO phase.
    HttpConn c;
    NDX_RETURN_IF_ERROR(c.Connect(gateway_port));
    const absl::Time give_up = absl::Now() + absl::Minutes(2);
    for (;;) {
      NDX_ASSIGN_OR_RETURN(auto s,
                           c.Exchange(HttpRequestText("GET", "/api/executions/queue/stats", "")));
      Json j = Json::parse(s.second, nullptr, false);
      const Json d = j.is_object() && j.contains("data") ? j["data"] : j;
      if (d.is_object() && d.value("waiting", 1) == 0 && d.value("active", 1) == 0) break;
      if (absl::Now() > give_up) return absl::DeadlineExceededError("REST executions not drained");
      absl::SleepFor(absl::Milliseconds(250));
    }
    Progress(absl::StrCat("REST executions drained; gateway RSS ", RssKb(gw), " KiB"));
  }

  // 2. Socket.IO.
  {
    const std::string out = o.log_dir + "/sio-result.json";
    const int64_t rss_before = RssKb(gw);
    const double gw_cpu0 = PidCpuUs(gw).value_or(0);
    testing::ChildProcess node;
    std::filesystem::remove(out + ".connected");
    NDX_RETURN_IF_ERROR(
        node.Start({o.node, o.script, "--url", absl::StrCat("http://127.0.0.1:", gateway_port),
                    "--clients", absl::StrCat(o.clients), "--out", out, "--steps",
                    absl::StrCat(o.steps), "--wait_ms", absl::StrCat(o.wait_ms)},
                   o.log_dir + "/sio-clients.log", {{"NODE_PATH", o.node_path}}));
    Progress(absl::StrCat("Socket.IO: ", o.clients, " clients (", o.script, ")"));
    int64_t rss_peak = rss_before, rss_connected = 0;
    const int64_t start = MonotonicNs();
    const absl::Time give_up = absl::Now() + absl::Minutes(4);
    while (node.Running()) {
      rss_peak = std::max(rss_peak, RssKb(gw));
      if (rss_connected == 0 && !testing::ReadFile(out + ".connected").empty()) {
        rss_connected = RssKb(gw);
      }
      if (absl::Now() > give_up) {
        node.Signal(SIGKILL);
        node.Wait();
        return absl::DeadlineExceededError("the Socket.IO clients did not finish in 4 minutes");
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    const double seconds = (MonotonicNs() - start) / 1e9;
    const double gw_cpu = PidCpuUs(gw).value_or(0) - gw_cpu0;
    const int rc = node.Wait();
    Json r = Json::parse(testing::ReadFile(out), nullptr, false);
    if (!r.is_object()) {  // rc is -1 when Running() has reaped the child already
      return absl::InternalError(absl::StrCat("the Socket.IO clients failed (", rc, "):\n",
                                              testing::ReadFile(node.log_path())));
    }
    absl::SleepFor(absl::Seconds(2));
    r["mode"] = "socketio";
    r["rss_kb_start"] = rss_start;
    r["rss_kb_before"] = rss_before;
    r["rss_kb_connected"] = rss_connected;
    r["rss_kb_peak"] = rss_peak;
    r["rss_kb_after"] = RssKb(gw);
    r["gateway_cpu_s"] = gw_cpu / 1e6;
    r["phase_s"] = seconds;
    Progress(r.dump());
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace ndx::bench
