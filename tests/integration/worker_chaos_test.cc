// Real processes — ndx-queue, two ndx-worker, redis-server with AOF, PostgreSQL — under load while
// workers are killed with SIGKILL (and some stopped with SIGTERM) at random moments. Every
// execution's HTTP nodes call a loopback sink that counts requests by Idempotency-Key.
//
// Afterwards: every accepted execution ended exactly once (one terminal event, last in a gap-free
// log, state COMPLETED), no node completed twice (a checkpointed node never ran again), and the
// sink saw every node at least once and a repeated call only for nodes that were in flight when a
// worker died (at most one per killed slot). Also: cancel latency through real processes.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "libs/events/event_log.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/http_sink.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/time_scale.h"

namespace ndx {
namespace {

using ::ndx::testing::ChildProcess;
using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using Json = nlohmann::json;

constexpr int kWorkerSlots = 4;

class WorkerChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ndx-chaos");
    ASSERT_THAT(redis_.Start(), IsOk());
    ASSERT_THAT(pg_.Start(), IsOk());
    ASSERT_THAT(pg_.CreateDatabase("ndx"), IsOk());
    queue_port_ = testing::FreePort();
    ASSERT_THAT(queue_.Start({NDX_QUEUE_BIN}, dir_ + "/queue.log",
                             Env({{"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port_)},
                                  {"NDX_QUEUE_METRICS_ADDR", "127.0.0.1:0"}})),
                IsOk());
    ASSERT_TRUE(WaitUntil([&] { return Serving(queue_port_); }, absl::Seconds(20)))
        << testing::ReadFile(dir_ + "/queue.log");
    stub_ = v1::QueueService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", queue_port_),
                                                          grpc::InsecureChannelCredentials()));
    pool_ = std::make_unique<redis::RedisPool>(*redis::ParseRedisUrl(redis_.url()), 4);
  }

  void TearDown() override {
    for (auto& w : workers_) {
      w->Signal(SIGKILL);
      w->Wait();
    }
    queue_.Signal(SIGTERM);
    (void)queue_.WaitFor(absl::Seconds(5));
  }

  std::map<std::string, std::string> Env(std::map<std::string, std::string> extra) {
    std::map<std::string, std::string> env = {{"REDIS_URL", redis_.url()},
                                              {"DATABASE_URL", pg_.url("ndx")},
                                              {"NDX_LEASE", "2s"},
                                              {"NDX_MAX_STALLS", "20"},
                                              {"NDX_RETRY_BACKOFF", "200ms"},
                                              {"NDX_HOUSEKEEPING_INTERVAL", "200ms"},
                                              {"NDX_LOG_LEVEL", "warn"}};
    for (auto& [k, v] : extra) env[k] = v;
    return env;
  }

  void StartWorker(size_t index) {
    while (workers_.size() <= index) {
      workers_.push_back(std::make_unique<ChildProcess>());
      worker_ports_.push_back(0);
    }
    worker_ports_[index] = testing::FreePort();
    ASSERT_THAT(workers_[index]->Start(
                    {NDX_WORKER_BIN}, absl::StrCat(dir_, "/worker", index, ".log"),
                    Env({{"NDX_WORKER_ADDR", absl::StrCat("127.0.0.1:", worker_ports_[index])},
                         {"NDX_WORKER_METRICS_ADDR", "127.0.0.1:0"},
                         {"NDX_WORKER_ID", absl::StrCat("w", index, "-", ++generation_)},
                         {"EXECUTION_WORKER_CONCURRENCY", absl::StrCat(kWorkerSlots)},
                         {"NDX_SHUTDOWN_GRACE", "1s"}})),
                IsOk());
  }

  static bool Serving(int port) {
    absl::StatusOr<testing::ServingStatus> s =
        testing::CheckHealth(absl::StrCat("127.0.0.1:", port), "");
    return s.ok() && *s == testing::ServingStatus::kServing;
  }

  v1::ExecuteWorkflowRequest Request(const testing::HttpSink& sink, int http_nodes) {
    v1::ExecuteWorkflowRequest r;
    v1::Workflow* wf = r.mutable_workflow();
    wf->set_id("wf-chaos");
    v1::Node* t = wf->add_nodes();
    t->set_id("t");
    t->set_name("Trigger");
    t->set_type("manual-trigger");
    std::string prev = "t";
    for (int i = 0; i < http_nodes; ++i) {
      v1::Node* n = wf->add_nodes();
      n->set_id(absl::StrCat("h", i));
      n->set_name(absl::StrCat("Call ", i));
      n->set_type("http-request");
      n->set_parameters_json(Json{
          {"method", "POST"},
          {"url", sink.url(absl::StrCat("/step", i))},
          {"body", "{}"}}.dump());
      v1::Connection* c = wf->add_connections();
      c->set_id(absl::StrCat("c", i));
      c->set_source_node_id(prev);
      c->set_target_node_id(n->id());
      prev = n->id();
    }
    r.set_workspace_id("ws");
    return r;
  }

  absl::StatusOr<v1::Execution> Get(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetExecutionRequest req;
    req.set_execution_id(id);
    v1::Execution e;
    grpc::Status s = stub_->GetExecution(&ctx, req, &e);
    if (!s.ok())
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return e;
  }

  static bool Terminal(v1::ExecutionState s) {
    return s == v1::EXECUTION_STATE_COMPLETED || s == v1::EXECUTION_STATE_FAILED ||
           s == v1::EXECUTION_STATE_CANCELLED || s == v1::EXECUTION_STATE_TIMED_OUT;
  }

  std::string dir_;
  testing::RedisServer redis_{testing::RedisServer::Options{.append_only = true}};
  testing::PostgresServer pg_;
  int queue_port_ = 0;
  ChildProcess queue_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::vector<int> worker_ports_;  // their gRPC ports
  int generation_ = 0;
  std::unique_ptr<v1::QueueService::Stub> stub_;
  std::unique_ptr<redis::RedisPool> pool_;
};

TEST_F(WorkerChaosTest, KilledWorkersLoseNothingAndRepeatNoCheckpointedNode) {
  constexpr int kExecutions = 200, kHttpNodes = 3;
  testing::HttpSink sink(absl::Milliseconds(15));
  StartWorker(0);
  StartWorker(1);
  std::vector<std::string> ids;
  for (int i = 0; i < kExecutions; ++i) {
    grpc::ClientContext ctx;
    v1::ExecuteWorkflowResponse resp;
    ASSERT_TRUE(stub_->ExecuteWorkflow(&ctx, Request(sink, kHttpNodes), &resp).ok());
    ids.push_back(resp.execution_id());
  }
  // Chaos: every 300-700 ms, SIGKILL (or every fourth time SIGTERM) one worker and restart it.
  std::mt19937 rng(7);
  int kills = 0, terms = 0;
  const absl::Time chaos_end = absl::Now() + absl::Seconds(8);
  while (absl::Now() < chaos_end) {
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(300, 700)(rng)));
    const size_t victim = std::uniform_int_distribution<size_t>(0, 1)(rng);
    if ((kills + terms) % 4 == 3) {
      // SIGTERM a worker that runs: one that arrives before main() has blocked it (to take it
      // with sigwait) ends the process by the default action, which is not the graceful path
      // under test, and a TSan-built worker can take longer than a round here to get there.
      ASSERT_TRUE(WaitUntil([&] { return Serving(worker_ports_[victim]); }, absl::Seconds(10)));
      workers_[victim]->Signal(SIGTERM);
      absl::StatusOr<int> st = workers_[victim]->WaitFor(absl::Seconds(10));
      ASSERT_THAT(st, IsOk());
      EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
          << "SIGTERM exits cleanly; wait status " << *st << ", log:\n"
          << testing::ReadFile(workers_[victim]->log_path());
      ++terms;
    } else {
      workers_[victim]->Signal(SIGKILL);
      workers_[victim]->Wait();
      ++kills;
    }
    StartWorker(victim);
  }
  // Everything ends.
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const std::string& id : ids) {
          absl::StatusOr<v1::Execution> e = Get(id);
          if (!e.ok() || !Terminal(e->state())) return false;
        }
        return true;
      },
      absl::Seconds(90), absl::Milliseconds(200)));

  events::EventLog log(*pool_, "default");
  int completed = 0;
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Execution> e = Get(id);
    ASSERT_THAT(e, IsOk());
    EXPECT_EQ(e->state(), v1::EXECUTION_STATE_COMPLETED) << id << ": " << e->error().message();
    if (e->state() == v1::EXECUTION_STATE_COMPLETED) ++completed;
    absl::StatusOr<std::vector<events::StoredEvent>> evs = log.Read(id, 0, 1000);
    ASSERT_THAT(evs, IsOk());
    int terminal = 0;
    std::map<std::string, int> node_completed;
    for (const events::StoredEvent& ev : *evs) {
      const Json j = Json::parse(ev.json);
      const std::string type = j["type"];
      if (type == "completed" || type == "failed" || type == "cancelled") ++terminal;
      if (type == "node-completed") node_completed[j["nodeId"]]++;
    }
    EXPECT_EQ(terminal, 1) << id;
    ASSERT_FALSE(evs->empty());
    EXPECT_EQ(Json::parse(evs->back().json)["type"], "completed") << id;
    for (const auto& [node, n] : node_completed) {
      EXPECT_EQ(n, 1) << id << " node " << node << " completed " << n << " times";
    }
    EXPECT_EQ(node_completed.size(), static_cast<size_t>(kHttpNodes + 1)) << id;
  }
  // The history in PostgreSQL converges to the same: every execution SUCCESS, one row per node
  // (rows are keyed by run, so a repeated in-flight call leaves no second row).
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const std::string& id : ids) {
          absl::StatusOr<v1::Execution> e = Get(id);
          if (!e.ok() || e->node_executions_size() != kHttpNodes + 1) return false;
        }
        return true;
      },
      absl::Seconds(30), absl::Milliseconds(200)));
  // A worker killed between its last Redis write and its history write leaves the row RUNNING
  // until ndx-queue's reconciliation (every ~5 s) records the end from Redis.
  v1::ListExecutionsResponse page;
  EXPECT_TRUE(WaitUntil(
      [&] {
        grpc::ClientContext ctx;
        v1::ListExecutionsRequest lreq;
        lreq.set_workflow_id("wf-chaos");
        lreq.add_states(v1::EXECUTION_STATE_COMPLETED);
        lreq.set_page_size(100);
        page.Clear();
        return stub_->ListExecutions(&ctx, lreq, &page).ok() && page.total_size() == kExecutions;
      },
      absl::Seconds(30), absl::Milliseconds(500)))
      << page.total_size() << " of " << kExecutions << " completed in the history";
  EXPECT_EQ(page.executions_size(), 100);
  EXPECT_FALSE(page.next_page_token().empty());
  const std::map<std::string, int> calls = sink.counts();
  int repeated = 0;
  for (const std::string& id : ids) {
    for (int i = 0; i < kHttpNodes; ++i) {
      auto it = calls.find(absl::StrCat(id, ":h", i));
      ASSERT_NE(it, calls.end()) << id << " h" << i << " was never called";
      repeated += it->second - 1;
    }
  }
  // A repeat is a node that was in flight (called, not yet checkpointed) when its worker died.
  EXPECT_LE(repeated, kills * kWorkerSlots);
  std::printf(
      "chaos: executions=%d completed=%d sigkill=%d sigterm=%d repeated_in_flight_calls=%d "
      "sink_calls=%d lost=0 duplicated_terminal=0\n",
      kExecutions, completed, kills, terms, repeated, sink.total());
}

TEST_F(WorkerChaosTest, CancelStopsRunningExecutionsWithin200MsAtP99) {
  testing::HttpSink slow(absl::Seconds(30));
  StartWorker(0);
  std::vector<absl::Duration> latencies;
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext ctx;
    v1::ExecuteWorkflowResponse resp;
    ASSERT_TRUE(stub_->ExecuteWorkflow(&ctx, Request(slow, 1), &resp).ok());
    const std::string id = resp.execution_id();
    ASSERT_TRUE(WaitUntil([&] { return slow.counts().count(id + ":h0") == 1; }, absl::Seconds(10)));
    grpc::ClientContext cctx;
    v1::CancelExecutionRequest creq;
    creq.set_execution_id(id);
    v1::Execution cancelled;
    const absl::Time start = absl::Now();
    ASSERT_TRUE(stub_->CancelExecution(&cctx, creq, &cancelled).ok());
    ASSERT_TRUE(WaitUntil(
        [&] {
          absl::StatusOr<v1::Execution> e = Get(id);
          return e.ok() && e->state() == v1::EXECUTION_STATE_CANCELLED;
        },
        absl::Seconds(5), absl::Milliseconds(2)));
    latencies.push_back(absl::Now() - start);
  }
  std::sort(latencies.begin(), latencies.end());
  const absl::Duration p50 = latencies[latencies.size() / 2];
  const absl::Duration p99 = latencies[latencies.size() * 99 / 100];
  std::printf("cancel latency: p50=%s p99=%s max=%s (20 running executions)\n",
              absl::FormatDuration(p50).c_str(), absl::FormatDuration(p99).c_str(),
              absl::FormatDuration(latencies.back()).c_str());
  EXPECT_LE(p99, testing::TimeScaled(absl::Milliseconds(200)));
}

TEST_F(WorkerChaosTest, DirectModeRunsInsideNdxQueueWithTheSameEvents) {
  testing::HttpSink sink;
  // No ndx-worker runs: use_queue=false executions run on ndx-queue's own runner.
  v1::ExecuteWorkflowRequest req = Request(sink, 2);
  req.set_use_queue(false);
  grpc::ClientContext ctx;
  v1::ExecuteWorkflowResponse resp;
  ASSERT_TRUE(stub_->ExecuteWorkflow(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.mode(), v1::EXECUTION_MODE_DIRECT);
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WaitExecutionRequest wreq;
  wreq.set_execution_id(resp.execution_id());
  v1::Execution done;
  ASSERT_TRUE(stub_->WaitExecution(&wctx, wreq, &done).ok());
  EXPECT_EQ(done.state(), v1::EXECUTION_STATE_COMPLETED);
  EXPECT_EQ(done.mode(), v1::EXECUTION_MODE_DIRECT);
  EXPECT_EQ(sink.total(), 2);
  events::EventLog log(*pool_, "default.direct");
  absl::StatusOr<std::vector<events::StoredEvent>> evs = log.Read(resp.execution_id(), 0, 100);
  ASSERT_THAT(evs, IsOk());
  ASSERT_EQ(evs->size(), 8u);  // started, 3 x (node-started, node-completed), completed
  EXPECT_EQ(Json::parse(evs->back().json)["type"], "completed");
}

TEST_F(WorkerChaosTest, AWorkflowNamedByIdIsLoadedFromNodeDropsWorkflowsTable) {
  StartWorker(0);
  absl::StatusOr<std::unique_ptr<pg::PgPool>> pool =
      pg::PgPool::Create({.conninfo = pg_.url("ndx")});
  ASSERT_THAT(pool, IsOk());
  const Json nodes = Json::array(
      {{{"id", "t"},
        {"name", "Start"},
        {"type", "manual-trigger"},
        {"parameters", Json::object()},
        {"position", {{"x", 0}, {"y", 0}}}},
       {{"id", "s"},
        {"name", "Set"},
        {"type", "set"},
        {"parameters",
         {{"values", Json::array({{{"keyValue", {{"key", "from"}, {"value", "db"}}}}})}}}}});
  const Json connections = Json::array({{{"id", "c1"},
                                         {"sourceNodeId", "t"},
                                         {"sourceOutput", "main"},
                                         {"targetNodeId", "s"},
                                         {"targetInput", "main"}}});
  ASSERT_THAT((*pool)->Run([&](pqxx::work& tx) {
    tx.exec(
        "CREATE TABLE workflows (id text PRIMARY KEY, name text, nodes json, connections json, "
        "settings json, workspace_id text)");
    tx.exec_params("INSERT INTO workflows VALUES ($1, $2, $3, $4, $5, $6)", "wf-db", "From DB",
                   nodes.dump(), connections.dump(), "{}", "ws");
    return absl::OkStatus();
  }),
              IsOk());
  v1::ExecuteWorkflowRequest req;
  req.set_workflow_id("wf-db");
  req.set_workspace_id("ws");
  grpc::ClientContext ctx;
  v1::ExecuteWorkflowResponse resp;
  grpc::Status s = stub_->ExecuteWorkflow(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WaitExecutionRequest wreq;
  wreq.set_execution_id(resp.execution_id());
  v1::Execution done;
  ASSERT_TRUE(stub_->WaitExecution(&wctx, wreq, &done).ok());
  EXPECT_EQ(done.state(), v1::EXECUTION_STATE_COMPLETED);
  EXPECT_EQ(done.workflow_id(), "wf-db");
  // Another workspace's workflow, and an unknown one: NOT_FOUND.
  for (const auto& [id, ws] : {std::pair<std::string, std::string>{"wf-db", "other"},
                               std::pair<std::string, std::string>{"wf-missing", "ws"}}) {
    grpc::ClientContext c;
    v1::ExecuteWorkflowRequest r;
    r.set_workflow_id(id);
    r.set_workspace_id(ws);
    EXPECT_EQ(stub_->ExecuteWorkflow(&c, r, &resp).error_code(), grpc::StatusCode::NOT_FOUND)
        << id << " / " << ws;
  }
}

}  // namespace
}  // namespace ndx
