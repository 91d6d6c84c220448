// QueueService over real gRPC (loopback) against a real redis-server.
#include "services/queue/queue_service.h"

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_server.h"
#include "libs/common/grpc_status.h"
#include "libs/service/worker_registry.h"
#include "nlohmann/json.hpp"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::queue {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::HasSubstr;

class QueueServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new testing::RedisServer();
    ASSERT_THAT(redis_->Start(), IsOk());
  }
  static void TearDownTestSuite() { delete redis_; }

  void SetUp() override { StartService(QueueOptions{}); }

  void StartService(QueueOptions queue_options) {
    server_.reset();
    service_.reset();
    pool_ = std::make_unique<redis::RedisPool>(*redis::ParseRedisUrl(redis_->url()), 4);
    {
      auto c = pool_->Acquire(absl::Seconds(1));
      ASSERT_THAT((*c)->Command({"FLUSHALL"}), IsOk());
    }
    QueueServiceImpl::Options o;
    o.queue = std::move(queue_options);
    service_ = std::make_unique<QueueServiceImpl>(*pool_, o, common::RealClock());
    absl::StatusOr<common::GrpcServer> server = common::StartGrpcServer(
        "127.0.0.1:0", {{service_.get(), v1::QueueService::service_full_name()}});
    ASSERT_THAT(server, IsOk());
    server_ = std::make_unique<common::GrpcServer>(*std::move(server));
    stub_ = v1::QueueService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    server_.reset();
    service_.reset();
  }

  static v1::ExecuteWorkflowRequest Request() {
    v1::ExecuteWorkflowRequest r;
    v1::Workflow* wf = r.mutable_workflow();
    wf->set_id("wf-1");
    wf->set_name("Demo");
    v1::Node* trigger = wf->add_nodes();
    trigger->set_id("node-1");
    trigger->set_name("Manual Trigger");
    trigger->set_type("manual-trigger");
    v1::Node* set = wf->add_nodes();
    set->set_id("node-2");
    set->set_name("Set");
    set->set_type("set");
    set->set_parameters_json(R"({"values":[{"keyValue":{"key":"a","value":"1"}}]})");
    v1::Connection* c = wf->add_connections();
    c->set_id("c1");
    c->set_source_node_id("node-1");
    c->set_target_node_id("node-2");
    r.set_trigger_data_json(R"({"source":"test"})");
    r.set_workspace_id("ws-1");
    r.set_user_id("u-1");
    return r;
  }

  absl::StatusOr<v1::ExecuteWorkflowResponse> Execute(const v1::ExecuteWorkflowRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ExecuteWorkflowResponse resp;
    const grpc::Status s = stub_->ExecuteWorkflow(&ctx, r, &resp);
    if (!s.ok()) return common::FromGrpcStatus(s);
    return resp;
  }

  absl::StatusOr<v1::Execution> Get(const std::string& id, const std::string& ws = "ws-1") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetExecutionRequest req;
    req.set_execution_id(id);
    req.set_workspace_id(ws);
    v1::Execution resp;
    const grpc::Status s = stub_->GetExecution(&ctx, req, &resp);
    if (!s.ok()) return common::FromGrpcStatus(s);
    return resp;
  }

  absl::StatusOr<v1::Execution> Cancel(const std::string& id) {
    grpc::ClientContext ctx;
    v1::CancelExecutionRequest req;
    req.set_execution_id(id);
    req.set_workspace_id("ws-1");
    v1::Execution resp;
    const grpc::Status s = stub_->CancelExecution(&ctx, req, &resp);
    if (!s.ok()) return common::FromGrpcStatus(s);
    return resp;
  }

  absl::Status Delete(const std::string& id, const std::string& ws = "ws-1") {
    grpc::ClientContext ctx;
    v1::DeleteExecutionRequest req;
    req.set_execution_id(id);
    req.set_workspace_id(ws);
    v1::DeleteExecutionResponse resp;
    const grpc::Status s = stub_->DeleteExecution(&ctx, req, &resp);
    if (s.ok() && resp.execution_id() != id) return absl::InternalError("wrong id in response");
    return common::FromGrpcStatus(s);
  }

  // A consumer's view of the default queue, to move executions along.
  RedisQueue Consumer(const std::string& name = "default") {
    return RedisQueue(*pool_, QueueOptions{.name = name}, common::RealClock());
  }

  static testing::RedisServer* redis_;
  std::unique_ptr<redis::RedisPool> pool_;
  std::unique_ptr<QueueServiceImpl> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::QueueService::Stub> stub_;
};

testing::RedisServer* QueueServiceTest::redis_ = nullptr;

TEST_F(QueueServiceTest, ExecuteEnqueuesAndGetShowsIt) {
  absl::StatusOr<v1::ExecuteWorkflowResponse> r = Execute(Request());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->execution_id().size(), 36u);
  EXPECT_EQ(r->state(), v1::EXECUTION_STATE_WAITING);
  EXPECT_EQ(r->mode(), v1::EXECUTION_MODE_QUEUE);
  EXPECT_FALSE(r->deduplicated());
  absl::StatusOr<v1::Execution> e = Get(r->execution_id());
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->state(), v1::EXECUTION_STATE_WAITING);
  EXPECT_EQ(e->workflow_id(), "wf-1");
  EXPECT_EQ(e->workflow_name(), "Demo");
  EXPECT_EQ(e->trigger_node_id(), "node-1");
  EXPECT_EQ(e->trigger_data_json(), R"({"source":"test"})");
  EXPECT_EQ(e->user_id(), "u-1");
  EXPECT_EQ(e->queue(), "default");
  EXPECT_EQ(e->timeout().seconds(), 300);
  EXPECT_EQ(e->max_attempts(), 4);
  // The worker gets NodeDrop's workflow shape.
  RedisQueue q = Consumer();
  absl::StatusOr<ClaimResult> claim = q.Claim("w", 1);
  ASSERT_THAT(claim, IsOk());
  ASSERT_EQ(claim->jobs.size(), 1u);
  const nlohmann::json payload = nlohmann::json::parse(claim->jobs[0].payload);
  EXPECT_EQ(payload["workflow"]["nodes"][1]["parameters"]["values"][0]["keyValue"]["key"], "a");
  EXPECT_EQ(payload["workflow"]["connections"][0]["sourceOutput"], "main");
  EXPECT_EQ(payload["triggerData"]["source"], "test");
  // The payload is written as a head plus the workflow's text: still one compact document, its
  // members in the documented order, "workflow" last.
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(claim->jobs[0].payload);
  EXPECT_EQ(ordered.dump(), claim->jobs[0].payload);
  std::vector<std::string> keys;
  for (const auto& [key, value] : ordered.items()) keys.push_back(key);
  EXPECT_THAT(keys, ::testing::ElementsAre("v", "workflowId", "workflowName", "workspaceId",
                                           "userId", "requestId", "triggerNodeId", "triggerData",
                                           "singleNodeMode", "queue", "workflow"));
  EXPECT_EQ(ordered["workflowId"], "wf-1");
  EXPECT_EQ(ordered["workflow"]["id"], "wf-1");
}

TEST_F(QueueServiceTest, RequestIdMakesExecuteIdempotent) {
  v1::ExecuteWorkflowRequest req = Request();
  req.set_request_id("click-1");
  absl::StatusOr<v1::ExecuteWorkflowResponse> a = Execute(req);
  absl::StatusOr<v1::ExecuteWorkflowResponse> b = Execute(req);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->execution_id(), b->execution_id());
  EXPECT_TRUE(b->deduplicated());
  // Another workspace's identical request id is its own.
  req.set_workspace_id("ws-2");
  absl::StatusOr<v1::ExecuteWorkflowResponse> c = Execute(req);
  EXPECT_NE(c->execution_id(), a->execution_id());
}

TEST_F(QueueServiceTest, BadRequestsNameTheFieldOrNode) {
  struct Case {
    std::function<void(v1::ExecuteWorkflowRequest&)> mutate;
    const char* says;
  };
  const Case cases[] = {
      {[](auto& r) { r.clear_workflow(); }, "workflow is required"},
      {[](auto& r) { r.mutable_workflow()->clear_nodes(); }, "workflow.nodes is empty"},
      {[](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_id("node-1"); },
       "duplicate node id \"node-1\""},
      {[](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_type(""); },
       "node \"Set\" (node-2): type is empty"},
      {[](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_parameters_json("{bad"); },
       "node \"Set\" (node-2): parameters_json is not valid JSON"},
      {[](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_parameters_json("[1]"); },
       "parameters_json must be a JSON object"},
      {[](auto& r) { r.mutable_workflow()->mutable_connections(0)->set_target_node_id("ghost"); },
       "connection c1: node \"ghost\" does not exist"},
      {[](auto& r) { r.set_trigger_node_id("ghost"); }, "trigger_node_id"},
      {[](auto& r) { r.set_trigger_data_json("not json"); }, "trigger_data_json"},
      // Would overflow the stack of whoever copies or dumps it (libs/common/json_depth.h).
      {[](auto& r) {
         r.set_trigger_data_json(std::string(200000, '[') + std::string(200000, ']'));
       },
       "trigger_data_json: JSON nested deeper than 1000 levels"},
      {[](auto& r) {
         r.mutable_workflow()->mutable_nodes(1)->set_parameters_json(
             "{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}");
       },
       "parameters_json: JSON nested deeper than 1000 levels"},
      {[](auto& r) { r.set_priority(5000); }, "priority"},
      {[](auto& r) { r.set_queue("no spaces"); }, "queue"},
  };
  for (const Case& c : cases) {
    v1::ExecuteWorkflowRequest req = Request();
    c.mutate(req);
    EXPECT_THAT(Execute(req), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.says)))
        << c.says;
  }
  EXPECT_EQ(service_ != nullptr, true);
  // Nothing was enqueued by the bad requests.
  absl::StatusOr<QueueStats> stats = Consumer().Stats();
  EXPECT_EQ(stats->waiting, 0);
}

TEST_F(QueueServiceTest, OversizedJobAndFullQueueAreResourceExhausted) {
  StartService(QueueOptions{.max_depth = 2, .max_payload_bytes = 2048});
  v1::ExecuteWorkflowRequest big = Request();
  big.set_trigger_data_json(absl::StrCat("{\"x\":\"", std::string(4096, 'a'), "\"}"));
  EXPECT_THAT(Execute(big),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("NDX_MAX_JOB_BYTES")));
  ASSERT_THAT(Execute(Request()), IsOk());
  ASSERT_THAT(Execute(Request()), IsOk());
  EXPECT_THAT(Execute(Request()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("queue is full")));
}

TEST_F(QueueServiceTest, CancelWaitingRunningAndFinished) {
  const std::string waiting = Execute(Request())->execution_id();
  absl::StatusOr<v1::Execution> c = Cancel(waiting);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::EXECUTION_STATE_CANCELLED);
  EXPECT_THAT(Cancel(waiting), IsOk());  // idempotent

  const std::string running = Execute(Request())->execution_id();
  RedisQueue q = Consumer();
  ClaimedJob job = q.Claim("w", 1)->jobs.at(0);
  ASSERT_EQ(job.id, running);
  c = Cancel(running);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->state(), v1::EXECUTION_STATE_CANCELLING);
  EXPECT_TRUE(c->cancel_requested());

  const std::string done = Execute(Request())->execution_id();
  ClaimedJob d = q.Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(q.Complete({JobRef{done, d.epoch}}), IsOk());
  EXPECT_THAT(Cancel(done), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Cancel("6f1c0d2e-0000-4000-8000-000000000000"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueServiceTest, DeleteOnlyFinishedExecutionsOfTheCallersWorkspace) {
  const std::string id = Execute(Request())->execution_id();
  EXPECT_THAT(Delete(id), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("waiting")));
  RedisQueue q = Consumer();
  ClaimedJob job = q.Claim("w", 1)->jobs.at(0);
  EXPECT_THAT(Delete(id), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("active")));
  ASSERT_THAT(q.Complete({JobRef{id, job.epoch}}), IsOk());
  EXPECT_THAT(Delete(id, "ws-2"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(Get(id), IsOk());  // still there
  ASSERT_THAT(Delete(id), IsOk());
  EXPECT_THAT(Get(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Delete(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Delete(""), StatusIs(absl::StatusCode::kInvalidArgument));
  // Cancelled ones too.
  const std::string cancelled = Execute(Request())->execution_id();
  ASSERT_THAT(Cancel(cancelled), IsOk());
  EXPECT_THAT(Delete(cancelled), IsOk());
}

TEST_F(QueueServiceTest, ListWorkersShowsLiveWorkersAndOnlyTheCallersExecutions) {
  service::WorkerRegistry registry(*pool_);
  auto worker = [](const std::string& id) {
    v1::WorkerStatus w;
    w.set_worker_id(id);
    w.set_slots_total(5);
    w.set_slots_busy(2);
    v1::RunningExecution* mine = w.add_running_executions();
    mine->set_execution_id("e-mine");
    mine->set_workspace_id("ws-1");
    v1::RunningExecution* theirs = w.add_running_executions();
    theirs->set_execution_id("e-theirs");
    theirs->set_workspace_id("ws-2");
    return w;
  };
  ASSERT_THAT(registry.Report(worker("w-b"), absl::Now()), IsOk());
  ASSERT_THAT(registry.Report(worker("w-a"), absl::Now()), IsOk());
  // A worker killed 30 s ago (no report since): left out, and its entry removed.
  ASSERT_THAT(registry.Report(worker("w-dead"), absl::Now() - absl::Seconds(30)), IsOk());

  auto list = [&](const std::string& ws) {
    grpc::ClientContext ctx;
    v1::ListWorkersRequest req;
    req.set_workspace_id(ws);
    v1::ListWorkersResponse resp;
    EXPECT_TRUE(stub_->ListWorkers(&ctx, req, &resp).ok());
    return resp;
  };
  v1::ListWorkersResponse mine = list("ws-1");
  ASSERT_EQ(mine.workers_size(), 2);
  EXPECT_EQ(mine.workers(0).worker_id(), "w-a");
  EXPECT_EQ(mine.workers(1).worker_id(), "w-b");
  EXPECT_EQ(mine.workers(0).slots_busy(), 2);  // slot counts stay whole
  ASSERT_EQ(mine.workers(0).running_executions_size(), 1);
  EXPECT_EQ(mine.workers(0).running_executions(0).execution_id(), "e-mine");
  EXPECT_GT(mine.workers(0).reported_at().seconds(), 0);
  EXPECT_EQ(list("").workers(0).running_executions_size(), 2);  // a trusted caller sees all
  {
    auto c = pool_->Acquire(absl::Seconds(1));
    EXPECT_EQ((*c)->Command({"HEXISTS", service::WorkerRegistry::kKey, "w-dead"})->integer(), 0);
    const int64_t ttl = (*c)->Command({"TTL", service::WorkerRegistry::kKey})->integer();
    EXPECT_GT(ttl, 0);  // the hash expires when no worker reports any more
    EXPECT_LE(ttl, 30);
  }
  ASSERT_THAT(registry.Remove("w-a"), IsOk());
  EXPECT_EQ(list("ws-1").workers_size(), 1);
}

TEST_F(QueueServiceTest, OtherWorkspacesSeeNothing) {
  const std::string id = Execute(Request())->execution_id();
  EXPECT_THAT(Get(id, "ws-2"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Get(id, ""), IsOk());  // a trusted internal caller
}

TEST_F(QueueServiceTest, WaitExecutionReturnsAtTheTerminalStateOrTheDeadline) {
  const std::string id = Execute(Request())->execution_id();
  {
    grpc::ClientContext ctx;
    v1::WaitExecutionRequest req;
    req.set_execution_id(id);
    req.mutable_timeout()->set_nanos(200000000);
    v1::Execution resp;
    const absl::Time start = absl::Now();
    const grpc::Status s = stub_->WaitExecution(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
    EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  }
  RedisQueue q = Consumer();
  std::thread finisher([&] {
    ClaimedJob job = q.Claim("w", 1)->jobs.at(0);
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_THAT(q.Complete({JobRef{job.id, job.epoch}}), IsOk());
  });
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::WaitExecutionRequest req;
  req.set_execution_id(id);
  v1::Execution resp;
  const grpc::Status s = stub_->WaitExecution(&ctx, req, &resp);
  finisher.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.state(), v1::EXECUTION_STATE_COMPLETED);
}

TEST_F(QueueServiceTest, RetryResumesAFailedExecutionUnderANewId) {
  const std::string id = Execute(Request())->execution_id();
  RedisQueue q = Consumer();
  ClaimedJob job = q.Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(
      q.Fail({id, job.epoch}, R"({"message":"HTTP 404","code":"X","nodeId":"node-2"})", false),
      IsOk());
  absl::StatusOr<v1::Execution> failed = Get(id);
  EXPECT_EQ(failed->state(), v1::EXECUTION_STATE_FAILED);
  EXPECT_EQ(failed->error().node_id(), "node-2");
  grpc::ClientContext ctx;
  v1::RetryExecutionRequest req;
  req.set_execution_id(id);
  req.set_workspace_id("ws-1");
  v1::Execution retried;
  ASSERT_TRUE(stub_->RetryExecution(&ctx, req, &retried).ok());
  EXPECT_NE(retried.id(), id);
  EXPECT_EQ(retried.retry_of_execution_id(), id);
  EXPECT_EQ(retried.state(), v1::EXECUTION_STATE_WAITING);
  EXPECT_EQ(retried.workflow_id(), "wf-1");
}

TEST_F(QueueServiceTest, StatsPerQueueAndNamedQueues) {
  ASSERT_THAT(Execute(Request()), IsOk());
  v1::ExecuteWorkflowRequest high = Request();
  high.set_queue("high");
  const std::string in_high = Execute(high)->execution_id();
  EXPECT_EQ(Get(in_high)->queue(), "high");
  grpc::ClientContext ctx;
  v1::GetQueueStatsResponse resp;
  ASSERT_TRUE(stub_->GetQueueStats(&ctx, v1::GetQueueStatsRequest(), &resp).ok());
  ASSERT_EQ(resp.queues_size(), 2);
  EXPECT_EQ(resp.queues(0).queue(), "default");
  EXPECT_EQ(resp.queues(0).waiting(), 1);
  EXPECT_EQ(resp.queues(1).queue(), "high");
  EXPECT_EQ(resp.queues(1).waiting(), 1);
}

TEST_F(QueueServiceTest, DirectModeIsRefusedClearly) {
  v1::ExecuteWorkflowRequest req = Request();
  req.set_use_queue(false);
  EXPECT_THAT(Execute(req), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("direct mode")));
}

TEST_F(QueueServiceTest, RedisDownIsUnavailable) {
  redis_->Kill();
  EXPECT_THAT(Execute(Request()), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(redis_->Restart(), IsOk());
  EXPECT_TRUE(ndx::testing::WaitUntil([&] { return Execute(Request()).ok(); }, absl::Seconds(5)));
}

// Group commit (EnqueueBatcher behind ExecuteWorkflow): concurrent calls, each its own answer.

int64_t RedisInt(redis::RedisPool& pool, const std::vector<std::string_view>& args) {
  absl::StatusOr<redis::RedisPool::Lease> c = pool.Acquire(absl::Seconds(2));
  if (!c.ok()) return -1;
  absl::StatusOr<redis::RedisReply> r = (*c)->Command(args);
  return r.ok() && r->is_integer() ? r->integer() : -1;
}

int64_t BlockedClients(redis::RedisPool& pool) {
  absl::StatusOr<redis::RedisPool::Lease> c = pool.Acquire(absl::Seconds(2));
  if (!c.ok()) return -1;
  absl::StatusOr<redis::RedisReply> r = (*c)->Command({"INFO", "clients"});
  if (!r.ok()) return -1;
  const std::string info = r->str();
  const size_t at = info.find("blocked_clients:");
  return at == std::string::npos ? -1 : std::atoi(info.c_str() + at + 16);
}

TEST_F(QueueServiceTest, ConcurrentExecuteCallsGetDistinctIdsAndEveryJobExists) {
  constexpr int kThreads = 16, kCalls = 25;
  absl::Mutex mu;
  std::vector<std::string> ids;
  std::vector<absl::Status> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        absl::StatusOr<v1::ExecuteWorkflowResponse> r = Execute(Request());
        absl::MutexLock lock(&mu);
        if (r.ok()) {
          ids.push_back(r->execution_id());
        } else {
          errors.push_back(r.status());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());
  ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(),
            static_cast<size_t>(kThreads * kCalls));
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), kThreads * kCalls);
  for (const std::string& id : ids) {
    ASSERT_EQ(RedisInt(*pool_, {"EXISTS", absl::StrCat("ndx:{default}:j:", id)}), 1) << id;
  }
}

// The process's housekeeping tick (queue_server.cc) runs again after the follow-up, not the
// interval, while Housekeep says a queue left a backlog of expired waiting jobs.
TEST_F(QueueServiceTest, HousekeepSaysWhenABacklogIsLeft) {
  StartService(QueueOptions{.state_ttl = absl::Seconds(1),
                            .housekeeping_interval = absl::Seconds(30),
                            .housekeeping_batch = 100,
                            .housekeeping_follow_up = absl::Milliseconds(20)});
  RedisQueue producer(*pool_, QueueOptions{.state_ttl = absl::Seconds(1)}, common::RealClock());
  std::vector<NewJob> jobs;
  for (int i = 0; i < 150; ++i) jobs.push_back(NewJob{.id = absl::StrCat("x", i), .payload = "{}"});
  ASSERT_THAT(producer.Enqueue(jobs), IsOk());
  auto gone = [&](std::string_view key, absl::Duration within) {
    return ndx::testing::WaitUntil([&] { return RedisInt(*pool_, {"EXISTS", key}) == 0; }, within);
  };
  ASSERT_TRUE(gone("ndx:{default}:j:x149", absl::Seconds(5)));
  EXPECT_TRUE(service_->Housekeep("q1"));
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), 50);
  // After the follow-up the next run (here another process's) takes the rest and says so.
  ASSERT_TRUE(gone("ndx:{default}:hk", absl::Seconds(2)));
  EXPECT_FALSE(service_->Housekeep("q2"));
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), 0);
}

class GroupCommitTest : public QueueServiceTest {
 protected:
  // Holds Redis (CLIENT PAUSE) so that one ExecuteWorkflow call is in flight, then starts
  // `requests` concurrently and waits until all of them wait in the batcher behind it. Returns
  // the threads' results once `release` (run after they are pending) has been called and they
  // are done.
  std::vector<absl::StatusOr<v1::ExecuteWorkflowResponse>> OneBatch(
      const std::vector<v1::ExecuteWorkflowRequest>& requests, int pause_ms,
      const std::function<void()>& release, absl::StatusOr<v1::ExecuteWorkflowResponse>* first) {
    EXPECT_THAT(Execute(Request()), IsOk());  // the queue is known, the script loaded
    {
      auto c = pool_->Acquire(absl::Seconds(1));
      EXPECT_THAT((*c)->Command({"CLIENT", "PAUSE", absl::StrCat(pause_ms), "WRITE"}), IsOk());
    }
    std::thread head([&] { *first = Execute(Request()); });
    EXPECT_TRUE(
        ndx::testing::WaitUntil([&] { return BlockedClients(*pool_) == 1; }, absl::Seconds(5)));
    std::vector<absl::StatusOr<v1::ExecuteWorkflowResponse>> results(
        requests.size(), absl::UnknownError("not done"));
    std::vector<std::thread> threads;
    size_t queued = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = Execute(requests[i]); });
      // A request refused before the enqueue (oversized) never waits in the batcher.
      if (requests[i].trigger_data_json().size() < 1024) queued++;
    }
    EXPECT_TRUE(ndx::testing::WaitUntil([&] { return service_->PendingEnqueues() == queued; },
                                        absl::Seconds(5)))
        << service_->PendingEnqueues() << " of " << queued << " pending";
    release();
    head.join();
    for (auto& t : threads) t.join();
    return results;
  }

  void Unpause() {
    auto c = pool_->Acquire(absl::Seconds(1));
    EXPECT_THAT((*c)->Command({"CLIENT", "UNPAUSE"}), IsOk());
  }
};

TEST_F(GroupCommitTest, DuplicatesOfOneRequestInTheSameBatchGetOneExecution) {
  std::vector<v1::ExecuteWorkflowRequest> requests(8, Request());
  for (auto& r : requests) r.set_request_id("same-request");
  absl::StatusOr<v1::ExecuteWorkflowResponse> first;
  auto results = OneBatch(
      requests, 3000, [&] { Unpause(); }, &first);
  ASSERT_THAT(first, IsOk());
  std::set<std::string> ids;
  int fresh = 0;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    ids.insert(r->execution_id());
    fresh += r->deduplicated() ? 0 : 1;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(fresh, 1);
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), 3);  // warm-up, head, the request
}

TEST_F(GroupCommitTest, AFullQueueOrAnOversizedJobFailsOnlyItsOwnCall) {
  StartService(QueueOptions{.max_depth = 5, .max_payload_bytes = 4096});
  std::vector<v1::ExecuteWorkflowRequest> requests(5, Request());
  requests[2].set_trigger_data_json(absl::StrCat("{\"x\":\"", std::string(8192, 'a'), "\"}"));
  absl::StatusOr<v1::ExecuteWorkflowResponse> first;
  auto results = OneBatch(
      requests, 3000, [&] { Unpause(); }, &first);
  ASSERT_THAT(first, IsOk());
  // Warm-up and head make 2 waiting: 3 of the 4 queued fit, in arrival order unknown to us.
  int ok = 0, full = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (i == 2) {
      EXPECT_THAT(results[i],
                  StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("NDX_MAX_JOB_BYTES")));
      continue;
    }
    if (results[i].ok()) {
      ok++;
    } else {
      EXPECT_THAT(results[i],
                  StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("queue is full")));
      full++;
    }
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(full, 1);
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), 5);
}

TEST_F(GroupCommitTest, RedisKilledWhileCallsWaitFailsThemAllPromptlyAndRetriesEnqueueOnce) {
  constexpr int kRequests = 8;
  std::vector<v1::ExecuteWorkflowRequest> requests(kRequests, Request());
  for (int i = 0; i < kRequests; ++i) requests[i].set_request_id(absl::StrCat("req-", i));
  absl::StatusOr<v1::ExecuteWorkflowResponse> first;
  absl::Time killed;
  auto results = OneBatch(
      requests, 10000,
      [&] {
        killed = absl::Now();
        redis_->Kill();
      },
      &first);
  const absl::Duration took = absl::Now() - killed;
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kUnavailable));
  for (const auto& r : results) EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(took, absl::Seconds(2)) << "callers waited for a dead Redis";
  ASSERT_THAT(redis_->Restart(), IsOk());  // no AOF: an empty Redis, as after a failover
  // The retries (same request ids) enqueue each request once; a second retry finds them.
  std::vector<std::string> ids(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    absl::StatusOr<v1::ExecuteWorkflowResponse> r;
    ASSERT_TRUE(
        ndx::testing::WaitUntil([&] { return (r = Execute(requests[i])).ok(); }, absl::Seconds(5)));
    EXPECT_FALSE(r->deduplicated());
    ids[i] = r->execution_id();
  }
  for (int i = 0; i < kRequests; ++i) {
    absl::StatusOr<v1::ExecuteWorkflowResponse> r = Execute(requests[i]);
    ASSERT_THAT(r, IsOk());
    EXPECT_TRUE(r->deduplicated());
    EXPECT_EQ(r->execution_id(), ids[i]);
  }
  EXPECT_EQ(RedisInt(*pool_, {"ZCARD", "ndx:{default}:wait"}), kRequests);
}

}  // namespace
}  // namespace ndx::queue
