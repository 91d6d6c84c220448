// A real Prometheus server (Debian's `prometheus`) scrapes a running ndx-queue, ndx-worker and
// ndx-gateway; the test queries a histogram and a gauge through Prometheus's HTTP API after an
// execution ran.
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx {
namespace {

using ::ndx::testing::ChildProcess;
using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using Json = nlohmann::json;

// The first sample's value of an instant query, or nullopt.
std::optional<double> Query(int port, const std::string& encoded_query) {
  absl::StatusOr<testing::HttpResult> r =
      testing::HttpGet(port, "/api/v1/query?query=" + encoded_query);
  if (!r.ok() || r->status != 200) return std::nullopt;
  const Json j = Json::parse(r->body, nullptr, false);
  if (!j.is_object() || j.value("status", "") != "success") return std::nullopt;
  const Json& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

TEST(PrometheusScrape, HistogramsAndGaugesOfAllThreeProcesses) {
  const std::string dir = testing::MakeTempDir("ndx-prom");
  testing::RedisServer redis;
  testing::PostgresServer pg;
  ASSERT_THAT(redis.Start(), IsOk());
  ASSERT_THAT(pg.Start(), IsOk());
  ASSERT_THAT(pg.CreateDatabase("ndx"), IsOk());
  const int queue_port = testing::FreePort(), queue_metrics = testing::FreePort();
  const int worker_metrics = testing::FreePort(), gateway_port = testing::FreePort();
  std::map<std::string, std::string> env = {
      {"REDIS_URL", redis.url()},
      {"DATABASE_URL", pg.url("ndx")},
      {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_QUEUE_METRICS_ADDR", absl::StrCat("127.0.0.1:", queue_metrics)},
      {"NDX_WORKER_ADDR", "127.0.0.1:0"},
      {"NDX_WORKER_METRICS_ADDR", absl::StrCat("127.0.0.1:", worker_metrics)},
      {"NDX_GATEWAY_ADDR", absl::StrCat("127.0.0.1:", gateway_port)},
      {"NDX_QUEUE_SERVER", absl::StrCat("127.0.0.1:", queue_port)},
      {"NDX_AUTH", "none"},
      {"NDX_LOG_LEVEL", "warn"}};
  ChildProcess queue, worker, gateway, prometheus;
  ASSERT_THAT(queue.Start({NDX_QUEUE_BIN}, dir + "/queue.log", env), IsOk());
  ASSERT_THAT(worker.Start({NDX_WORKER_BIN}, dir + "/worker.log", env), IsOk());
  ASSERT_THAT(gateway.Start({NDX_GATEWAY_BIN}, dir + "/gateway.log", env), IsOk());
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<testing::ServingStatus> s =
            testing::CheckHealth(absl::StrCat("127.0.0.1:", queue_port), "");
        return s.ok() && *s == testing::ServingStatus::kServing;
      },
      absl::Seconds(20)));

  const int prom_port = testing::FreePort();
  {
    std::ofstream config(dir + "/prometheus.yml");
    config
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: ndx\n    static_configs:\n      - targets: ['127.0.0.1:"
        << queue_metrics << "', '127.0.0.1:" << worker_metrics << "', '127.0.0.1:" << gateway_port
        << "']\n";
  }
  ASSERT_THAT(prometheus.Start({"prometheus", "--config.file=" + dir + "/prometheus.yml",
                                "--storage.tsdb.path=" + dir + "/tsdb",
                                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                               dir + "/prometheus.log"),
              IsOk());

  // One execution, so that the worker's histograms have observations.
  auto stub = v1::QueueService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", queue_port),
                                                            grpc::InsecureChannelCredentials()));
  v1::ExecuteWorkflowRequest req;
  v1::Node* t = req.mutable_workflow()->add_nodes();
  t->set_id("t");
  t->set_type("manual-trigger");
  grpc::ClientContext ctx;
  v1::ExecuteWorkflowResponse resp;
  ASSERT_TRUE(stub->ExecuteWorkflow(&ctx, req, &resp).ok());

  // All three targets up, then the histogram and the gauges through Prometheus's API. The first
  // scrape comes a few seconds after Prometheus starts: poll, never a fixed sleep.
  EXPECT_TRUE(WaitUntil([&] { return Query(prom_port, "sum%28up%29") == 3.0; }, absl::Seconds(60),
                        absl::Milliseconds(250)))
      << testing::ReadFile(dir + "/prometheus.log");
  EXPECT_TRUE(WaitUntil([&] { return Query(prom_port, "ndx_queue_wait_seconds_count") >= 1.0; },
                        absl::Seconds(30), absl::Milliseconds(250)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Query(prom_port,
                     "ndx_execution_duration_seconds_count%7Boutcome%3D%22completed%22%7D") >= 1.0;
      },
      absl::Seconds(30), absl::Milliseconds(250)));
  EXPECT_EQ(Query(prom_port, "ndx_worker_slots_total"), 5.0);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Query(prom_port,
                     "ndx_queue_depth%7Bqueue%3D%22default%22%2Cstate%3D%22waiting%22%7D") == 0.0;
      },
      absl::Seconds(30), absl::Milliseconds(250)));
  for (ChildProcess* p : {&prometheus, &gateway, &worker, &queue}) {
    p->Signal(SIGTERM);
    ASSERT_THAT(p->WaitFor(absl::Seconds(10)), IsOk());
  }
}

}  // namespace
}  // namespace ndx
