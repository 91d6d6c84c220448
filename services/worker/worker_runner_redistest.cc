// The worker's run loop against a real redis-server, with real workflows: checkpoints and events,
// failures and retries that resume from the completed nodes, cancel, durable waits, lost leases and
// shutdown.
#include "services/worker/worker_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/js/js_sandbox.h"
#include "libs/events/event_json.h"
#include "libs/events/event_log.h"
#include "libs/store/in_memory_execution_store.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/workflows/loopback_server.h"

namespace ndx::worker {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

// A job payload as the queue service builds it (services/queue/job_payload.h).
std::string Payload(const std::vector<Json>& node_list, const std::vector<Json>& edge_list) {
  Json nodes = Json::array(), connections = Json::array();
  for (const Json& n : node_list) nodes.push_back(n);
  for (const Json& e : edge_list) connections.push_back(e);
  return Json{{"v", 1},
              {"workflowId", "wf-1"},
              {"workspaceId", "ws-1"},
              {"triggerNodeId", "t"},
              {"triggerData", {{"n", 1}}},
              {"workflow",
               {{"id", "wf-1"}, {"nodes", nodes}, {"connections", connections}, {"settings", {}}}}}
      .dump();
}

Json Node(const std::string& id, const std::string& type, Json params = Json::object(),
          Json settings = Json::object()) {
  return {{"id", id}, {"name", id}, {"type", type}, {"parameters", params}, {"settings", settings}};
}

Json Edge(const std::string& from, const std::string& to, const std::string& out = "main") {
  return {{"id", from + "-" + to},
          {"sourceNodeId", from},
          {"sourceOutput", out},
          {"targetNodeId", to},
          {"targetInput", "main"}};
}

// A TCP proxy in front of Redis that can lose one reply: the next request containing `marker` is
// passed on to Redis (which runs it), and then the client's connection is closed before the reply
// gets back, as when Redis is killed after running a script but before answering.
class ReplyDroppingProxy {
 public:
  explicit ReplyDroppingProxy(int redis_port) : redis_port_(redis_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listener_, 64);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~ReplyDroppingProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    accept_thread_.join();
    for (std::thread& t : pumps_) t.join();
  }
  int port() const { return port_; }
  void DropReplyTo(const std::string& marker) {
    absl::MutexLock lock(&mu_);
    marker_ = marker;
  }
  int dropped() const { return dropped_.load(); }

 private:
  void AcceptLoop() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      absl::MutexLock lock(&mu_);
      pumps_.emplace_back([this, client] { Pump(client); });
    }
  }
  void Pump(int client) {
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(redis_port_));
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(client);
      ::close(upstream);
      return;
    }
    char buf[1 << 16];
    pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    while (!stop_) {
      if (::poll(fds, 2, 100) <= 0) continue;
      if (fds[0].revents != 0) {
        const ssize_t n = ::read(client, buf, sizeof(buf));
        if (n <= 0) break;
        (void)::write(upstream, buf, n);
        bool drop = false;
        {
          absl::MutexLock lock(&mu_);
          if (!marker_.empty() &&
              std::string_view(buf, n).find(marker_) != std::string_view::npos) {
            marker_.clear();
            drop = true;
          }
        }
        if (drop) {
          absl::SleepFor(absl::Milliseconds(100));  // Redis runs the script
          ++dropped_;
          break;  // ... and its reply never arrives
        }
      }
      if (fds[1].revents != 0) {
        const ssize_t n = ::read(upstream, buf, sizeof(buf));
        if (n <= 0) break;
        (void)::write(client, buf, n);
      }
    }
    ::close(client);
    ::close(upstream);
  }

  const int redis_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_{0};
  absl::Mutex mu_;
  std::string marker_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  std::thread accept_thread_;
};

class WorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    engine::InitJsEngine();
    engine::InitHttpClient();
    redis_ = new testing::RedisServer();
    ASSERT_THAT(redis_->Start(), IsOk());
  }
  static void TearDownTestSuite() { delete redis_; }

  void SetUp() override {
    options_ = *redis::ParseRedisUrl(redis_->url());
    pool_ = std::make_unique<redis::RedisPool>(options_, 8);
    ASSERT_THAT(Cmd({"FLUSHALL"}), IsOk());
  }
  void TearDown() override { runner_.reset(); }

  queue::QueueOptions QOptions() {
    return queue::QueueOptions{.lease = absl::Seconds(2),
                               .housekeeping_interval = absl::Milliseconds(100),
                               .default_backoff = absl::Milliseconds(100),
                               .history_grace = absl::Milliseconds(500)};
  }

  // `scripts_via` (optional): where the runner's script calls go (another port of Redis).
  void StartRunner(int slots = 2, absl::Duration inline_wait = absl::Seconds(1),
                   store::ExecutionStore* history = nullptr, int scripts_via = 0) {
    WorkerOptions o;
    o.worker_id = "w-test";
    o.slots = slots;
    o.queue = QOptions();
    o.engine.max_inline_wait = inline_wait;
    o.store = history;
    redis::RedisOptions blocking = options_;
    if (scripts_via != 0) blocking.port = scripts_via;
    runner_ = std::make_unique<WorkerRunner>(*pool_, blocking, o, common::RealClock());
    runner_->Start();
  }

  absl::StatusOr<redis::RedisReply> Cmd(const std::vector<std::string_view>& args) {
    absl::StatusOr<redis::RedisPool::Lease> c = pool_->Acquire(absl::Seconds(1));
    if (!c.ok()) return c.status();
    return (*c)->Command(args);
  }

  std::string Enqueue(const std::string& payload) {
    queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
    const std::string id = queue::NewExecutionId();
    EXPECT_THAT(q.Enqueue({queue::NewJob{.id = id, .payload = payload, .workspace = "ws-1"}}),
                IsOk());
    return id;
  }

  // An execution whose one node is an HTTP request to `http` that takes 20 s, once that request
  // has reached the server: the run is then inside the node (for cancel, shutdown, node-started).
  std::string EnqueueSlowHttpAndWaitForIt(engine::testing::LoopbackServer& http) {
    const std::string id = Enqueue(
        Payload({Node("t", "manual-trigger"),
                 Node("slow", "http-request", {{"url", http.base_url() + "/slow?ms=20000"}})},
                {Edge("t", "slow")}));
    EXPECT_TRUE(WaitUntil([&] { return http.Count("/slow") == 1; }, absl::Seconds(10)));
    return id;
  }

  queue::JobState State(const std::string& id) {
    queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
    absl::StatusOr<queue::JobInfo> info = q.Get(id);
    return info.ok() ? info->state : queue::JobState::kWaiting;
  }

  // Waits for state `s`; on failure says where the execution ended up and why.
  ::testing::AssertionResult WaitState(const std::string& id, queue::JobState s,
                                       absl::Duration d = absl::Seconds(15)) {
    if (WaitUntil([&] { return State(id) == s || queue::IsTerminal(State(id)); }, d) &&
        State(id) == s) {
      return ::testing::AssertionSuccess();
    }
    queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
    absl::StatusOr<queue::JobInfo> info = q.Get(id);
    return ::testing::AssertionFailure()
           << "execution is " << queue::JobStateName(State(id))
           << "; error: " << (info.ok() ? info->error_json : info.status().ToString());
  }

  std::vector<std::string> EventTypes(const std::string& id) {
    events::EventLog log(*pool_, "default");
    std::vector<std::string> types;
    const absl::StatusOr<std::vector<events::StoredEvent>> stored = log.Read(id, 0, 1000);
    if (!stored.ok()) return {stored.status().ToString()};
    for (const events::StoredEvent& e : *stored) {
      types.push_back(Json::parse(e.json)["type"].get<std::string>() +
                      (Json::parse(e.json).contains("nodeId")
                           ? ":" + Json::parse(e.json)["nodeId"].get<std::string>()
                           : ""));
    }
    return types;
  }

  static testing::RedisServer* redis_;
  redis::RedisOptions options_;
  std::unique_ptr<redis::RedisPool> pool_;
  std::unique_ptr<WorkerRunner> runner_;
};

testing::RedisServer* WorkerTest::redis_ = nullptr;

TEST_F(WorkerTest, RunsAWorkflowWithCheckpointsAndOrderedEvents) {
  StartRunner();
  const std::string id = Enqueue(Payload(
      {Node("t", "manual-trigger"),
       Node("s", "set",
            {{"values", {{{"keyValue", {{"key", "x"}, {"value", "{{$json.triggerType}}"}}}}}}}),
       Node("c", "code", {{"code", "console.log('hi'); return [{json: {y: items[0].x + '!'}}];"}})},
      {Edge("t", "s"), Edge("s", "c")}));
  ASSERT_TRUE(WaitState(id, queue::JobState::kCompleted)) << queue::JobStateName(State(id));
  EXPECT_THAT(EventTypes(id),
              ElementsAre("started", "node-started:t", "node-completed:t", "node-started:s",
                          "node-completed:s", "node-started:c", "node-completed:c", "completed"));
  absl::StatusOr<redis::RedisReply> cps = Cmd({"HKEYS", "ndx:{default}:o:" + id});
  EXPECT_EQ(cps->elements().size(), 3u);
  absl::StatusOr<redis::RedisReply> c = Cmd({"HGET", "ndx:{default}:o:" + id, "c"});
  EXPECT_THAT(c->str(), HasSubstr("\"y\":\"manual!\""));
  EXPECT_EQ(runner_->Snapshot().processed, 1);
}

// Issue #10 gap 1 at the worker: its end write is accepted -> the execution's keys get their TTL;
// refused (the history is down past the worker's retry budget) -> the end waits on the unrecorded
// index, keys without TTL, until housekeeping records it once the history answers again.
TEST_F(WorkerTest, AnEndTheHistoryRefusedIsRecordedByHousekeepingLater) {
  store::InMemoryExecutionStore history;
  StartRunner(2, absl::Seconds(1), &history);
  const std::string payload =
      Payload({Node("t", "manual-trigger"), Node("n", "noop")}, {Edge("t", "n")});
  auto create = [&](const std::string& id) {
    ASSERT_THAT(history.CreateExecution({.id = id,
                                         .workflow_id = "wf-1",
                                         .workspace_id = "ws-1",
                                         .workflow_snapshot_json = "{}",
                                         .queue = "default",
                                         .created_at = absl::Now()}),
                IsOk());
  };
  auto status = [&](const std::string& id) {
    absl::StatusOr<store::ExecutionRecord> r = history.GetExecution(id, "", {});
    return r.ok() ? r->status : store::ExecutionStatus::kRunning;
  };
  auto ttl = [&](const std::string& id) {
    return Cmd({"TTL", "ndx:{default}:j:" + id})->integer();
  };
  auto unrecorded = [&](const std::string& id) {
    return !Cmd({"ZSCORE", "ndx:{default}:unrecorded", id})->is_nil();
  };

  // The normal path.
  const std::string ok_id = queue::NewExecutionId();
  create(ok_id);
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  ASSERT_THAT(q.Enqueue({queue::NewJob{.id = ok_id, .payload = payload, .workspace = "ws-1"}}),
              IsOk());
  ASSERT_TRUE(WaitState(ok_id, queue::JobState::kCompleted));
  ASSERT_TRUE(WaitUntil([&] { return ttl(ok_id) > 0; }, absl::Seconds(10)));
  EXPECT_EQ(status(ok_id), store::ExecutionStatus::kSuccess);
  EXPECT_FALSE(unrecorded(ok_id));

  // The history refuses every write for longer than the worker retries them.
  const std::string id = queue::NewExecutionId();
  create(id);
  history.FailNextWrites(absl::UnavailableError("postgres down"), 1000000);
  ASSERT_THAT(q.Enqueue({queue::NewJob{.id = id, .payload = payload, .workspace = "ws-1"}}),
              IsOk());
  ASSERT_TRUE(WaitState(id, queue::JobState::kCompleted));
  absl::SleepFor(QOptions().lease + absl::Seconds(1));  // the worker's retry budget is spent
  EXPECT_EQ(status(id), store::ExecutionStatus::kRunning);
  EXPECT_TRUE(unrecorded(id));
  EXPECT_EQ(ttl(id), -1) << "no TTL while the end is not recorded";
  // The history answers again: housekeeping records the end from Redis, then the TTL starts.
  history.FailNextWrites(absl::OkStatus(), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return status(id) == store::ExecutionStatus::kSuccess; }, absl::Seconds(10)));
  ASSERT_TRUE(WaitUntil([&] { return ttl(id) > 0; }, absl::Seconds(10)));
  EXPECT_FALSE(unrecorded(id));
}

// Issue #10 gap 2 at the worker: Redis runs the script that appends a node's node-started and
// node-failed, and the reply is lost; the worker repeats the call (same token) and the log has
// each event once.
TEST_F(WorkerTest, AReportWhoseReplyWasLostIsNotAppendedTwice) {
  ReplyDroppingProxy proxy(redis_->port());
  proxy.DropReplyTo(R"("type":"node-failed")");
  StartRunner(1, absl::Seconds(1), nullptr, proxy.port());
  const std::string id = Enqueue(Payload(
      {Node("t", "manual-trigger"), Node("c", "code", {{"code", "throw new Error('bad data');"}})},
      {Edge("t", "c")}));
  ASSERT_TRUE(WaitState(id, queue::JobState::kFailed));
  runner_.reset();  // before the proxy goes
  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_THAT(EventTypes(id), ElementsAre("started", "node-started:t", "node-completed:t",
                                          "node-started:c", "node-failed:c", "failed"));
}

TEST_F(WorkerTest, APermanentNodeErrorFailsAtOnceNamingTheNode) {
  StartRunner();
  const std::string id = Enqueue(Payload(
      {Node("t", "manual-trigger"), Node("c", "code", {{"code", "throw new Error('bad data');"}})},
      {Edge("t", "c")}));
  ASSERT_TRUE(WaitState(id, queue::JobState::kFailed));
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  absl::StatusOr<queue::JobInfo> info = q.Get(id);
  EXPECT_EQ(info->attempts, 1);
  EXPECT_THAT(info->error_json, HasSubstr("bad data"));
  EXPECT_THAT(info->error_json, HasSubstr("\"nodeId\":\"c\""));
  const std::vector<std::string> types = EventTypes(id);
  EXPECT_THAT(types, Contains("node-failed:c"));
  EXPECT_EQ(types.back(), "failed");
}

TEST_F(WorkerTest, TransientFailureRetriesAndResumesWithoutRerunningCompletedNodes) {
  engine::testing::LoopbackServer http;
  StartRunner();
  // "first" succeeds once; "flaky" answers 503 twice (the job is retried), then 200.
  const std::string id = Enqueue(Payload(
      {Node("t", "manual-trigger"),
       Node("first", "http-request", {{"method", "POST"}, {"url", http.base_url() + "/json"}}),
       Node("flaky", "http-request",
            {{"method", "POST"}, {"url", http.base_url() + "/flaky/a?fail=2"}})},
      {Edge("t", "first"), Edge("first", "flaky")}));
  ASSERT_TRUE(WaitState(id, queue::JobState::kCompleted)) << queue::JobStateName(State(id));
  EXPECT_EQ(http.Count("/json"), 1) << "a checkpointed node never runs again";
  EXPECT_EQ(http.Count("/flaky/a"), 3);
  const std::vector<std::string> types = EventTypes(id);
  EXPECT_EQ(std::count(types.begin(), types.end(), "retrying"), 2);
  EXPECT_EQ(std::count(types.begin(), types.end(), "started"), 1);
  EXPECT_EQ(types.back(), "completed");
}

TEST_F(WorkerTest, CancelStopsARunningHttpRequestWithin200Ms) {
  engine::testing::LoopbackServer http;
  StartRunner();
  const std::string id = EnqueueSlowHttpAndWaitForIt(http);
  ASSERT_EQ(http.Count("/slow"), 1);
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  const absl::Time start = absl::Now();
  ASSERT_THAT(q.Cancel(id), IsOk());
  ASSERT_TRUE(WaitState(id, queue::JobState::kCancelled, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_EQ(EventTypes(id).back(), "cancelled");
}

TEST_F(WorkerTest, ALongNodeReportsItsStartWhileItRuns) {
  engine::testing::LoopbackServer http;
  StartRunner();
  const std::string id = EnqueueSlowHttpAndWaitForIt(http);
  ASSERT_EQ(http.Count("/slow"), 1);
  // A fast node's node-started goes with its node-completed; a long one's is sent on its own.
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::vector<std::string> types = EventTypes(id);
        return !types.empty() && types.back() == "node-started:slow";
      },
      absl::Milliseconds(500)));
  EXPECT_EQ(State(id), queue::JobState::kActive);
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  ASSERT_THAT(q.Cancel(id), IsOk());
  ASSERT_TRUE(WaitState(id, queue::JobState::kCancelled, absl::Seconds(5)));
  EXPECT_THAT(EventTypes(id), ElementsAre("started", "node-started:t", "node-completed:t",
                                          "node-started:slow", "cancelled"));
}

TEST_F(WorkerTest, ADurableWaitFreesTheSlotAndResumes) {
  StartRunner(/*slots=*/1, /*inline_wait=*/absl::Milliseconds(500));
  const std::string waiting = Enqueue(
      Payload({Node("t", "manual-trigger"), Node("w", "wait", {{"amount", 3}, {"unit", "seconds"}}),
               Node("after", "noop")},
              {Edge("t", "w"), Edge("w", "after")}));
  ASSERT_TRUE(WaitState(waiting, queue::JobState::kDelayed, absl::Seconds(10)));
  // The only slot is free: another execution runs meanwhile.
  const std::string other =
      Enqueue(Payload({Node("t", "manual-trigger"), Node("n", "noop")}, {Edge("t", "n")}));
  ASSERT_TRUE(WaitState(other, queue::JobState::kCompleted, absl::Seconds(5)));
  EXPECT_EQ(State(waiting), queue::JobState::kDelayed);
  ASSERT_TRUE(WaitState(waiting, queue::JobState::kCompleted, absl::Seconds(10)));
  const std::vector<std::string> types = EventTypes(waiting);
  EXPECT_EQ(std::count(types.begin(), types.end(), "node-completed:t"), 1);
  EXPECT_THAT(types, Contains("node-completed:after"));
}

TEST_F(WorkerTest, AWorkerThatLostItsLeaseWritesNothingMore) {
  engine::testing::LoopbackServer http;
  StartRunner();
  const std::string id =
      Enqueue(Payload({Node("t", "manual-trigger"),
                       Node("slow", "http-request", {{"url", http.base_url() + "/slow?ms=1500"}}),
                       Node("after", "noop")},
                      {Edge("t", "slow"), Edge("slow", "after")}));
  ASSERT_TRUE(WaitUntil([&] { return http.Count("/slow") == 1; }, absl::Seconds(10)));
  // Another claim fences this worker off (as after a lapse and a re-claim elsewhere).
  ASSERT_THAT(Cmd({"HINCRBY", "ndx:{default}:j:" + id, "ep", "1"}), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return runner_->Snapshot().running.empty(); }, absl::Seconds(10)));
  EXPECT_EQ(Cmd({"HEXISTS", "ndx:{default}:o:" + id, "after"})->integer(), 0);
  EXPECT_EQ(State(id), queue::JobState::kActive) << "left for stalled recovery";
  EXPECT_GE(runner_->Snapshot().leases_lost, 1);
}

TEST_F(WorkerTest, ShutdownHandsRunningExecutionsBack) {
  engine::testing::LoopbackServer http;
  StartRunner();
  const std::string id = EnqueueSlowHttpAndWaitForIt(http);
  ASSERT_EQ(http.Count("/slow"), 1);
  const std::vector<std::string> released = runner_->Shutdown(absl::Milliseconds(200));
  EXPECT_THAT(released, ElementsAre(id));
  EXPECT_EQ(State(id), queue::JobState::kWaiting);
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  EXPECT_EQ(q.Get(id)->attempts, 0) << "a hand-back costs no attempt";
}

TEST_F(WorkerTest, AnInvalidWorkflowFailsPermanentlyWithTheReason) {
  StartRunner();
  const std::string id =
      Enqueue(Payload({Node("t", "manual-trigger"), Node("x", "no-such-type")}, {Edge("t", "x")}));
  ASSERT_TRUE(WaitState(id, queue::JobState::kFailed));
  queue::RedisQueue q(*pool_, QOptions(), common::RealClock());
  EXPECT_THAT(q.Get(id)->error_json, HasSubstr("no-such-type"));
}

}  // namespace
}  // namespace ndx::worker
