// The `ndx` binary against real processes: redis-server (AOF) and PostgreSQL from tests/testing,
// ndx-queue and ndx-worker as child processes. Drives `ndx run --follow` on examples/ and checks
// what it prints and its exit code (0 completed, 1 failed), then the other commands.
#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx {
namespace {

using ::ndx::testing::ChildProcess;
using ::ndx::testing::IsOk;
using ::testing::HasSubstr;

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr, interleaved
};

class CliE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::MakeTempDir("ndx-cli-e2e"));
    redis_ = new testing::RedisServer(testing::RedisServer::Options{.append_only = true});
    pg_ = new testing::PostgresServer();
    queue_ = new ChildProcess();
    worker_ = new ChildProcess();
    ASSERT_THAT(redis_->Start(), IsOk());
    ASSERT_THAT(pg_->Start(), IsOk());
    ASSERT_THAT(pg_->CreateDatabase("ndx"), IsOk());
    queue_addr_ = new std::string(absl::StrCat("127.0.0.1:", testing::FreePort()));
    worker_addr_ = new std::string(absl::StrCat("127.0.0.1:", testing::FreePort()));
    const std::map<std::string, std::string> env = {{"REDIS_URL", redis_->url()},
                                                    {"DATABASE_URL", pg_->url("ndx")},
                                                    {"NDX_LOG_LEVEL", "warn"},
                                                    {"NDX_SHUTDOWN_GRACE", "1s"}};
    auto with = [&](std::map<std::string, std::string> extra) {
      extra.insert(env.begin(), env.end());
      return extra;
    };
    ASSERT_THAT(queue_->Start({NDX_QUEUE_BIN}, *dir_ + "/queue.log",
                              with({{"NDX_QUEUE_ADDR", *queue_addr_},
                                    {"NDX_QUEUE_METRICS_ADDR", "127.0.0.1:0"}})),
                IsOk());
    ASSERT_THAT(worker_->Start({NDX_WORKER_BIN}, *dir_ + "/worker.log",
                               with({{"NDX_WORKER_ADDR", *worker_addr_},
                                     {"NDX_WORKER_METRICS_ADDR", "127.0.0.1:0"},
                                     {"NDX_WORKER_ID", "cli-e2e-worker"}})),
                IsOk());
    for (const std::string* addr : {queue_addr_, worker_addr_}) {
      ASSERT_TRUE(testing::WaitUntil(
          [&] {
            absl::StatusOr<testing::ServingStatus> s = testing::CheckHealth(*addr, "");
            return s.ok() && *s == testing::ServingStatus::kServing;
          },
          absl::Seconds(30)))
          << *addr << " never became SERVING\n"
          << testing::ReadFile(*dir_ + "/queue.log") << testing::ReadFile(*dir_ + "/worker.log");
    }
  }

  static void TearDownTestSuite() {
    for (ChildProcess* p : {worker_, queue_}) {
      p->Signal(SIGTERM);
      if (!p->WaitFor(absl::Seconds(10)).ok()) {
        p->Signal(SIGKILL);
        p->Wait();
      }
      delete p;
    }
    delete pg_;
    delete redis_;
    std::filesystem::remove_all(*dir_);
  }

  void TearDown() override {
    if (HasFailure()) {
      std::printf("--- queue.log\n%s--- worker.log\n%s",
                  testing::ReadFile(*dir_ + "/queue.log").c_str(),
                  testing::ReadFile(*dir_ + "/worker.log").c_str());
    }
  }

  // Runs `ndx ARGS...` with NDX_SERVER pointing at the queue; returns its exit code and output.
  static CliResult Ndx(std::vector<std::string> args) {
    static int n = 0;
    const std::string log = absl::StrCat(*dir_, "/ndx", ++n, ".log");
    args.insert(args.begin(), NDX_CLI_BIN);
    ChildProcess p;
    CliResult r;
    if (!p.Start(args, log, {{"NDX_SERVER", *queue_addr_}}).ok()) return r;
    absl::StatusOr<int> st = p.WaitFor(absl::Seconds(60));
    if (!st.ok()) {
      p.Signal(SIGKILL);
      p.Wait();
      r.output = testing::ReadFile(log) + "\n[ndx did not exit within 60 s]";
      return r;
    }
    r.code = WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
    r.output = testing::ReadFile(log);
    return r;
  }

  static std::string Example(const std::string& name) {
    return absl::StrCat(NDX_EXAMPLES_DIR, "/", name);
  }

  static std::string* dir_;
  static testing::RedisServer* redis_;
  static testing::PostgresServer* pg_;
  static ChildProcess* queue_;
  static ChildProcess* worker_;
  static std::string* queue_addr_;
  static std::string* worker_addr_;
};

std::string* CliE2eTest::dir_ = nullptr;
testing::RedisServer* CliE2eTest::redis_ = nullptr;
testing::PostgresServer* CliE2eTest::pg_ = nullptr;
ChildProcess* CliE2eTest::queue_ = nullptr;
ChildProcess* CliE2eTest::worker_ = nullptr;
std::string* CliE2eTest::queue_addr_ = nullptr;
std::string* CliE2eTest::worker_addr_ = nullptr;

TEST_F(CliE2eTest, RunFollowPrintsEachNodeAndTheFinalOutputAndExitsZero) {
  CliResult r = Ndx({"run", Example("order_routing.json"), "--follow"});
  std::printf("$ ndx run examples/order_routing.json --follow\n%s", r.output.c_str());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("(queued, waiting)"));
  EXPECT_THAT(r.output, HasSubstr("started    attempt 1"));
  EXPECT_THAT(r.output,
              ::testing::ContainsRegex("  completed  Start \\(manual-trigger\\)  [0-9]+ ms"));
  EXPECT_THAT(r.output,
              ::testing::ContainsRegex("  completed  Route by status \\(switch\\)  [0-9]+ ms"));
  EXPECT_THAT(r.output,
              ::testing::ContainsRegex("  completed  Large order\\? \\(ifElse\\)  [0-9]+ ms"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("  completed  Join \\(merge\\)  [0-9]+ ms"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("completed  in [0-9]+ ms"));
  EXPECT_THAT(r.output, HasSubstr("output of \"Summary\" (summary) [code]:"));
  EXPECT_THAT(r.output, HasSubstr("\"orders\": 3"));
  EXPECT_THAT(r.output, HasSubstr("\"send reminder\": 1"));
  EXPECT_THAT(r.output, HasSubstr("\"ship\": 2"));
}

TEST_F(CliE2eTest, RunFollowOfAFailingWorkflowNamesTheNodeAndExitsOne) {
  CliResult r = Ndx({"run", Example("failing_code.json"), "--follow"});
  std::printf("$ ndx run examples/failing_code.json --follow\n%s", r.output.c_str());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::ContainsRegex("  completed  Invoice \\(set\\)  [0-9]+ ms"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex(
                            "  failed     Validate amount \\(code\\)  [0-9]+ ms  .*amount must "
                            "not be negative: -5"));
  EXPECT_THAT(r.output, HasSubstr("result: failed at node \"Validate amount\" (validate) [code]"));
  EXPECT_THAT(r.output, HasSubstr("error: "));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("Never runs")));
}

TEST_F(CliE2eTest, EveryExampleRunsAsItIs) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(NDX_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".json") continue;
    const bool fails = entry.path().stem().string().rfind("failing", 0) == 0;
    CliResult r = Ndx({"run", entry.path().string(), "--follow"});
    EXPECT_EQ(r.code, fails ? 1 : 0) << entry.path() << "\n" << r.output;
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST_F(CliE2eTest, TriggerDataAndDirectMode) {
  CliResult r = Ndx({"run", Example("hello.json"), "--data", R"({"name": "Ada"})", "--follow",
                     "--trigger", "Start", "--direct"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("(direct, "));
  EXPECT_THAT(r.output, HasSubstr("\"greeting\": \"HELLO, ADA!\""));
}

TEST_F(CliE2eTest, GetStatsWorkersListCancelRetry) {
  // Without --follow: only the id, for scripts.
  CliResult run = Ndx({"run", Example("failing_code.json")});
  ASSERT_EQ(run.code, 0) << run.output;
  const std::string id(absl::StripAsciiWhitespace(run.output));
  ASSERT_EQ(id.size(), 36u) << run.output;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        return Ndx({"get", id}).output.find("state      failed") != std::string::npos;
      },
      absl::Seconds(30), absl::Milliseconds(100)));
  CliResult get = Ndx({"get", id});
  EXPECT_EQ(get.code, 0) << get.output;
  EXPECT_THAT(get.output, HasSubstr("execution  " + id));
  EXPECT_THAT(get.output, ::testing::ContainsRegex("Validate amount +code +failed"));
  CliResult json = Ndx({"get", id, "--json"});
  EXPECT_EQ(json.code, 0);
  EXPECT_THAT(json.output, HasSubstr("\"state\": \"EXECUTION_STATE_FAILED\""));

  // Retry resumes from the completed nodes and fails again at the same node.
  CliResult retry = Ndx({"retry", id, "--follow"});
  EXPECT_EQ(retry.code, 1) << retry.output;
  EXPECT_THAT(retry.output, HasSubstr("(retry of " + id));
  EXPECT_THAT(retry.output, HasSubstr("result: failed at node \"Validate amount\""));

  // Cancelling a finished execution is refused with the server's reason.
  CliResult cancel = Ndx({"cancel", id});
  EXPECT_EQ(cancel.code, 2) << cancel.output;
  EXPECT_THAT(cancel.output, HasSubstr("FAILED_PRECONDITION"));

  CliResult stats = Ndx({"stats"});
  EXPECT_EQ(stats.code, 0) << stats.output;
  EXPECT_THAT(stats.output, ::testing::ContainsRegex("default +0 +0 +0 +[0-9]+ +[1-9][0-9]*"));

  CliResult workers = Ndx({"workers", "--worker", *worker_addr_});
  EXPECT_EQ(workers.code, 0) << workers.output;
  EXPECT_THAT(workers.output, HasSubstr("worker     cli-e2e-worker"));
  EXPECT_THAT(workers.output, HasSubstr("running, slots 0/5 busy"));
  // Without an address: every live worker from the registry, through ndx-queue.
  CliResult registry = Ndx({"workers"});
  EXPECT_EQ(registry.code, 0) << registry.output;
  EXPECT_THAT(registry.output, HasSubstr("worker     cli-e2e-worker"));

  // The list comes from the execution history in PostgreSQL.
  CliResult list = Ndx({"list"});
  EXPECT_EQ(list.code, 0) << list.output;
  EXPECT_THAT(list.output, HasSubstr(id));

  CliResult health = Ndx({"health", "--server", *worker_addr_});
  EXPECT_EQ(health.code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr(": SERVING"));

  CliResult missing = Ndx({"get", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.output, HasSubstr("NOT_FOUND"));

  CliResult del = Ndx({"delete", id});
  EXPECT_EQ(del.code, 0) << del.output;
  EXPECT_THAT(del.output, HasSubstr("execution " + id + " deleted"));
  CliResult gone = Ndx({"get", id});
  EXPECT_EQ(gone.code, 2) << gone.output;
  EXPECT_THAT(gone.output, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace ndx
