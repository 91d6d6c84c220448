// End to end: the three ndx binaries, started as real processes against a real redis-server and a
// real PostgreSQL, answer health over real gRPC and HTTP, export metrics, follow their
// dependencies' health, and stop cleanly on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/time_scale.h"

namespace ndx {
namespace {

using ::ndx::testing::ChildProcess;
using ::ndx::testing::IsOk;
using ::ndx::testing::ServingStatus;
using ::ndx::testing::WaitUntil;
using ::testing::Contains;
using ::testing::HasSubstr;

class ServicesE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new testing::RedisServer();
    pg_ = new testing::PostgresServer();
    ASSERT_THAT(redis_->Start(), IsOk());
    ASSERT_THAT(pg_->Start(), IsOk());
    ASSERT_THAT(pg_->CreateDatabase("ndx"), IsOk());
  }
  static void TearDownTestSuite() {
    delete redis_;
    delete pg_;
  }

  void SetUp() override { dir_ = testing::MakeTempDir("ndx-e2e"); }

  std::map<std::string, std::string> BackendEnv() {
    return {{"REDIS_URL", redis_->url()},
            {"DATABASE_URL", pg_->url("ndx")},
            {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port_)},
            {"NDX_QUEUE_METRICS_ADDR", absl::StrCat("127.0.0.1:", queue_metrics_port_)},
            {"NDX_WORKER_ADDR", absl::StrCat("127.0.0.1:", worker_port_)},
            {"NDX_WORKER_METRICS_ADDR", absl::StrCat("127.0.0.1:", worker_metrics_port_)},
            {"NDX_GATEWAY_ADDR", absl::StrCat("127.0.0.1:", gateway_port_)},
            {"NDX_QUEUE_SERVER", absl::StrCat("127.0.0.1:", queue_port_)}};
  }

  // Starts `binary` and waits until its gRPC health says SERVING (or, for the gateway, /health
  // answers).
  void StartAll() {
    const auto env = BackendEnv();
    ASSERT_THAT(queue_.Start({NDX_QUEUE_BIN}, dir_ + "/queue.log", env), IsOk());
    ASSERT_THAT(worker_.Start({NDX_WORKER_BIN}, dir_ + "/worker.log", env), IsOk());
    ASSERT_THAT(gateway_.Start({NDX_GATEWAY_BIN}, dir_ + "/gateway.log", env), IsOk());
    ASSERT_TRUE(WaitUntil([&] { return Serving(queue_port_); }, absl::Seconds(20)))
        << testing::ReadFile(dir_ + "/queue.log");
    ASSERT_TRUE(WaitUntil([&] { return Serving(worker_port_); }, absl::Seconds(20)))
        << testing::ReadFile(dir_ + "/worker.log");
    ASSERT_TRUE(WaitUntil([&] { return testing::HttpGet(gateway_port_, "/health").ok(); },
                          absl::Seconds(20)))
        << testing::ReadFile(dir_ + "/gateway.log");
  }

  static bool Serving(int port) {
    absl::StatusOr<ServingStatus> s = testing::CheckHealth(absl::StrCat("127.0.0.1:", port), "");
    return s.ok() && *s == ServingStatus::kServing;
  }
  static bool NotServing(int port) {
    absl::StatusOr<ServingStatus> s = testing::CheckHealth(absl::StrCat("127.0.0.1:", port), "");
    return s.ok() && *s == ServingStatus::kNotServing;
  }

  // SIGTERM, then expect exit code 0 within 5 s (scaled under the sanitizers: ndx-queue gives
  // calls in flight up to 3 s, and a sanitized process's exit adds its own checks; once seen at
  // 5.0 s under ASan). `log_path` is read afterwards (it shows what the shutdown did).
  static void ExpectCleanStop(ChildProcess& p, const std::string& log_path) {
    p.Signal(SIGTERM);
    absl::StatusOr<int> status = p.WaitFor(testing::TimeScaled(absl::Seconds(5)));
    ASSERT_THAT(status, IsOk()) << testing::ReadFile(log_path);
    EXPECT_TRUE(WIFEXITED(*status)) << testing::ReadFile(log_path);
    EXPECT_EQ(WEXITSTATUS(*status), 0) << testing::ReadFile(log_path);
  }

  static testing::RedisServer* redis_;
  static testing::PostgresServer* pg_;
  std::string dir_;
  int queue_port_ = testing::FreePort();
  int queue_metrics_port_ = testing::FreePort();
  int worker_port_ = testing::FreePort();
  int worker_metrics_port_ = testing::FreePort();
  int gateway_port_ = testing::FreePort();
  ChildProcess queue_, worker_, gateway_;
};

testing::RedisServer* ServicesE2eTest::redis_ = nullptr;
testing::PostgresServer* ServicesE2eTest::pg_ = nullptr;

TEST_F(ServicesE2eTest, AllThreeServeHealthReflectionAndMetricsThenStopOnSigterm) {
  StartAll();
  // gRPC reflection lists the health service (and, later, ndx's own services).
  for (int port : {queue_port_, worker_port_}) {
    absl::StatusOr<std::vector<std::string>> services =
        testing::ListServices(absl::StrCat("127.0.0.1:", port));
    ASSERT_THAT(services, IsOk());
    EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
    EXPECT_THAT(*services, Contains("grpc.reflection.v1alpha.ServerReflection"));
  }
  // The gateway's /health has NodeDrop's shape and sees the queue.
  absl::StatusOr<testing::HttpResult> health = testing::HttpGet(gateway_port_, "/health");
  ASSERT_THAT(health, IsOk());
  EXPECT_EQ(health->status, 200);
  const nlohmann::json body = nlohmann::json::parse(health->body);
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["queue"]["status"], "ok");
  EXPECT_EQ(testing::HttpGet(gateway_port_, "/api/health")->status, 200);
  absl::StatusOr<testing::HttpResult> missing = testing::HttpGet(gateway_port_, "/nope");
  ASSERT_THAT(missing, IsOk());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing->body)["error"]["code"], "NOT_FOUND");

  // Metrics from each process.
  for (auto [port, service] :
       {std::pair{queue_metrics_port_, "ndx-queue"}, std::pair{worker_metrics_port_, "ndx-worker"},
        std::pair{gateway_port_, "ndx-gateway"}}) {
    absl::StatusOr<testing::HttpResult> metrics = testing::HttpGet(port, "/metrics");
    ASSERT_THAT(metrics, IsOk());
    EXPECT_EQ(metrics->status, 200);
    EXPECT_THAT(metrics->body, HasSubstr(absl::StrCat("ndx_build_info{service=\"", service)));
  }

  // The queue's gauges (refreshed every housekeeping interval) and the worker's slots, which the
  // autoscaling and alert rules in deploy/ rely on.
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<testing::HttpResult> m = testing::HttpGet(queue_metrics_port_, "/metrics");
        return m.ok() &&
               m->body.find("ndx_queue_depth{queue=\"default\",state=\"waiting\"} 0") !=
                   std::string::npos &&
               m->body.find("ndx_queue_oldest_waiting_age_seconds{queue=\"default\"}") !=
                   std::string::npos;
      },
      absl::Seconds(10)));
  absl::StatusOr<testing::HttpResult> wm = testing::HttpGet(worker_metrics_port_, "/metrics");
  ASSERT_THAT(wm, IsOk());
  EXPECT_THAT(wm->body, HasSubstr("ndx_worker_slots_total 5"));
  EXPECT_THAT(wm->body, HasSubstr("ndx_worker_slots_busy 0"));

  ExpectCleanStop(gateway_, dir_ + "/gateway.log");
  ExpectCleanStop(worker_, dir_ + "/worker.log");
  ExpectCleanStop(queue_, dir_ + "/queue.log");
  // Logs are JSON lines.
  const std::string log = testing::ReadFile(dir_ + "/queue.log");
  const std::string first_line = log.substr(0, log.find('\n'));
  EXPECT_TRUE(nlohmann::json::accept(first_line)) << first_line;
}

TEST_F(ServicesE2eTest, HealthFollowsRedisAndPostgres) {
  StartAll();
  redis_->Kill();
  EXPECT_TRUE(WaitUntil([&] { return NotServing(queue_port_); }, absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil([&] { return NotServing(worker_port_); }, absl::Seconds(10)));
  ASSERT_THAT(redis_->Restart(), IsOk());
  EXPECT_TRUE(WaitUntil([&] { return Serving(queue_port_); }, absl::Seconds(10)));
  EXPECT_TRUE(WaitUntil([&] { return Serving(worker_port_); }, absl::Seconds(10)));

  pg_->Stop();
  EXPECT_TRUE(WaitUntil([&] { return NotServing(queue_port_); }, absl::Seconds(15)));
  ASSERT_THAT(pg_->Restart(), IsOk());
  EXPECT_TRUE(WaitUntil([&] { return Serving(queue_port_); }, absl::Seconds(15)));

  // The gateway reports a lost queue service as degraded, and still answers.
  ExpectCleanStop(queue_, dir_ + "/queue.log");
  absl::StatusOr<testing::HttpResult> health = testing::HttpGet(gateway_port_, "/health");
  ASSERT_THAT(health, IsOk());
  EXPECT_EQ(nlohmann::json::parse(health->body)["status"], "degraded");
  ExpectCleanStop(worker_, dir_ + "/worker.log");
  ExpectCleanStop(gateway_, dir_ + "/gateway.log");
}

TEST_F(ServicesE2eTest, ConfigurationErrorsStopTheProcessNamingTheVariable) {
  struct Case {
    const char* binary;
    std::map<std::string, std::string> env;
    const char* says;
  };
  const Case cases[] = {
      {NDX_QUEUE_BIN,
       {{"REDIS_URL", ""}, {"DATABASE_URL", "postgresql://x@127.0.0.1/x"}},
       "REDIS_URL: required"},
      {NDX_WORKER_BIN,
       {{"REDIS_URL", "redis://127.0.0.1:1/0"},
        {"DATABASE_URL", "postgresql://x@127.0.0.1/x"},
        {"EXECUTION_WORKER_CONCURRENCY", "many"}},
       "EXECUTION_WORKER_CONCURRENCY: \"many\" is not an integer"},
      {NDX_GATEWAY_BIN, {{"NDX_GATEWAY_ADDR", "nowhere"}}, "NDX_GATEWAY_ADDR:"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.binary);
    ChildProcess p;
    const std::string log = dir_ + "/config.log";
    ASSERT_THAT(p.Start({c.binary}, log, c.env), IsOk());
    absl::StatusOr<int> status = p.WaitFor(absl::Seconds(10));
    ASSERT_THAT(status, IsOk());
    EXPECT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 2);
    EXPECT_THAT(testing::ReadFile(log), HasSubstr(c.says));
    std::remove(log.c_str());
  }
}

// A second queue or worker on the same ports: it says why and exits 1, cleanly (the history thread
// it had already started is stopped before the connections it borrows go away; a crash here once
// came from that order).
TEST_F(ServicesE2eTest, ABusyPortIsReportedAndTheProcessExits) {
  StartAll();
  for (const char* binary : {NDX_QUEUE_BIN, NDX_WORKER_BIN}) {
    SCOPED_TRACE(binary);
    ChildProcess second;
    const std::string log = dir_ + "/second.log";
    ASSERT_THAT(second.Start({binary}, log, BackendEnv()), IsOk());
    absl::StatusOr<int> status = second.WaitFor(absl::Seconds(10));
    ASSERT_THAT(status, IsOk());
    EXPECT_TRUE(WIFEXITED(*status)) << "raw status " << *status << "; log:\n"
                                    << testing::ReadFile(log);
    EXPECT_EQ(WEXITSTATUS(*status), 1) << testing::ReadFile(log);
    EXPECT_THAT(testing::ReadFile(log), HasSubstr("cannot start"));
    std::remove(log.c_str());
  }
}

}  // namespace
}  // namespace ndx
