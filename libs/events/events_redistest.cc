// The event log, its feed and the feed reader against a real redis-server.
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/events/event_hub.h"
#include "libs/events/event_json.h"
#include "libs/events/event_log.h"
#include "libs/queue/redis_queue.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::events {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class EventsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new testing::RedisServer();
    ASSERT_THAT(redis_->Start(), IsOk());
  }
  static void TearDownTestSuite() { delete redis_; }

  void SetUp() override {
    options_ = *redis::ParseRedisUrl(redis_->url());
    pool_ = std::make_unique<redis::RedisPool>(options_, 8);
    auto c = pool_->Acquire(absl::Seconds(1));
    ASSERT_THAT((*c)->Command({"FLUSHALL"}), IsOk());
  }

  absl::StatusOr<redis::RedisReply> Cmd(const std::vector<std::string_view>& args) {
    absl::StatusOr<redis::RedisPool::Lease> c = pool_->Acquire(absl::Seconds(1));
    if (!c.ok()) return c.status();
    return (*c)->Command(args);
  }

  static std::string NodeEvent(const std::string& exec, int n) {
    Event e;
    e.type = std::string(kNodeStarted);
    e.execution_id = exec;
    e.workflow_id = "wf";
    e.timestamp = absl::FromUnixMillis(1767225600000 + n);
    e.node_id = absl::StrCat("node-", n);
    return ToJson(e);
  }

  static testing::RedisServer* redis_;
  redis::RedisOptions options_;
  std::unique_ptr<redis::RedisPool> pool_;
};

testing::RedisServer* EventsTest::redis_ = nullptr;

TEST_F(EventsTest, AppendAssignsGapFreeSeqAndReadsFromAnySeq) {
  EventLog log(*pool_, "default");
  for (int i = 1; i <= 10; ++i) {
    absl::StatusOr<int64_t> seq = log.Append("e1", "wf", "ws", NodeEvent("e1", i), absl::Hours(1));
    ASSERT_THAT(seq, IsOk());
    EXPECT_EQ(*seq, i);
  }
  absl::StatusOr<std::vector<StoredEvent>> all = log.Read("e1", 0, 100);
  ASSERT_THAT(all, IsOk());
  ASSERT_THAT(*all, SizeIs(10));
  EXPECT_EQ((*all)[0].seq, 1);
  EXPECT_THAT((*all)[0].json, HasSubstr("\"nodeId\":\"node-1\""));
  absl::StatusOr<std::vector<StoredEvent>> middle = log.Read("e1", 4, 3);
  ASSERT_THAT(*middle, SizeIs(3));
  EXPECT_EQ((*middle)[0].seq, 5);
  EXPECT_THAT((*middle)[2].json, HasSubstr("node-7"));
  EXPECT_THAT(*log.Read("e1", 10, 100), SizeIs(0));  // from the end
  EXPECT_EQ(*log.Length("e1"), 10);
  // The log has the TTL it was given; the feed has every entry.
  EXPECT_GT(Cmd({"TTL", "ndx:{default}:ev:e1"})->integer(), 3500);
  EXPECT_EQ(Cmd({"XLEN", "ndx:{default}:feed"})->integer(), 10);
}

TEST_F(EventsTest, ConcurrentAppendsStayGapFree) {
  EventLog log(*pool_, "default");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        ASSERT_THAT(log.Append("e", "wf", "", NodeEvent("e", t * 1000 + i), absl::Hours(1)),
                    IsOk());
      }
    });
  }
  for (auto& t : threads) t.join();
  absl::StatusOr<std::vector<StoredEvent>> all = log.Read("e", 0, 2000);
  ASSERT_THAT(*all, SizeIs(1000));
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].seq, static_cast<int64_t>(i + 1));
}

TEST_F(EventsTest, EventJsonRoundTripsToProtoAndTruncatesLargeOutputs) {
  Event e;
  e.type = std::string(kNodeCompleted);
  e.execution_id = "e";
  e.workflow_id = "wf";
  e.timestamp = absl::FromUnixMillis(1767225600123);
  e.node_id = "node-2";
  e.node_name = "IF";
  e.node_type = "ifElse";
  e.data = {{"outputData", {{"main", Json::array({{{"json", {{"x", std::string(500, 'a')}}}}})}}},
            {"duration", 4}};
  const std::string small = ToJson(e);
  const std::string cut = ToJson(e, 100);
  v1::ExecutionEvent p;
  ASSERT_THAT(ToProto(small, 7, &p), IsOk());
  EXPECT_EQ(p.seq(), 7);
  EXPECT_EQ(p.type(), v1::EVENT_TYPE_NODE_COMPLETED);
  EXPECT_EQ(p.type_name(), "node-completed");
  EXPECT_EQ(p.node_name(), "IF");
  EXPECT_EQ(p.timestamp().seconds(), 1767225600);
  EXPECT_EQ(p.timestamp().nanos(), 123000000);
  EXPECT_FALSE(p.truncated());
  EXPECT_THAT(p.data_json(), HasSubstr("aaaa"));
  ASSERT_THAT(ToProto(cut, 7, &p), IsOk());
  EXPECT_TRUE(p.truncated());
  EXPECT_THAT(p.data_json(), HasSubstr("\"outputData\":null"));
  EXPECT_THAT(p.data_json(), HasSubstr("\"duration\":4"));
  EXPECT_TRUE(IsTerminalType("failed"));
  EXPECT_FALSE(IsTerminalType("node-failed"));
}

TEST_F(EventsTest, QueueTransitionsAppendTheirEventsAtomically) {
  queue::RedisQueue q(*pool_, queue::QueueOptions{}, common::RealClock());
  ASSERT_THAT(q.Enqueue({queue::NewJob{
                  .id = "c1", .payload = R"({"workflowId":"wf-9"})", .workspace = "ws-1"}}),
              IsOk());
  ASSERT_THAT(q.Cancel("c1"), IsOk());
  EventLog log(*pool_, "default");
  absl::StatusOr<std::vector<StoredEvent>> events = log.Read("c1", 0, 10);
  ASSERT_THAT(*events, SizeIs(1));
  v1::ExecutionEvent p;
  ASSERT_THAT(ToProto((*events)[0].json, 1, &p), IsOk());
  EXPECT_EQ(p.type(), v1::EVENT_TYPE_CANCELLED);
  EXPECT_EQ(p.workflow_id(), "wf-9");
  // The log expires with the execution's state.
  EXPECT_LE(Cmd({"TTL", "ndx:{default}:ev:c1"})->integer(), 3600);

  // Retrying and failed events from Fail(), with the workflow given by the caller.
  ASSERT_THAT(
      q.Enqueue({queue::NewJob{
          .id = "f1", .payload = "{}", .max_attempts = 2, .backoff = absl::ZeroDuration()}}),
      IsOk());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    queue::ClaimedJob j = q.Claim("w", 1)->jobs.at(0);
    ASSERT_THAT(q.Fail({"f1", j.epoch}, R"({"message":"HTTP 503","code":"HTTP_5XX"})", true,
                       queue::FailEvents{.append = true, .workflow_id = "wf-1"}),
                IsOk());
  }
  events = log.Read("f1", 0, 10);
  ASSERT_THAT(*events, SizeIs(2));
  ASSERT_THAT(ToProto((*events)[0].json, 1, &p), IsOk());
  EXPECT_EQ(p.type(), v1::EVENT_TYPE_RETRYING);
  EXPECT_EQ(p.attempt(), 1);
  EXPECT_EQ(p.error().message(), "HTTP 503");
  ASSERT_THAT(ToProto((*events)[1].json, 2, &p), IsOk());
  EXPECT_EQ(p.type(), v1::EVENT_TYPE_FAILED);
  EXPECT_EQ(p.execution_state(), v1::EXECUTION_STATE_FAILED);

  // A completion appends the caller's completed event.
  ASSERT_THAT(q.Enqueue({queue::NewJob{.id = "ok1", .payload = "{}"}}), IsOk());
  queue::ClaimedJob j = q.Claim("w", 1)->jobs.at(0);
  Event done{.type = std::string(kCompleted),
             .execution_id = "ok1",
             .workflow_id = "wf-1",
             .timestamp = absl::Now(),
             .data = {{"duration", 12}}};
  ASSERT_THAT(q.Complete({queue::Completion{"ok1", j.epoch, "wf-1", "ws", ToJson(done)}}), IsOk());
  events = log.Read("ok1", 0, 10);
  ASSERT_THAT(*events, SizeIs(1));
  EXPECT_THAT((*events)[0].json, HasSubstr("\"type\":\"completed\""));
}

TEST_F(EventsTest, HubFansOutToMatchingSubscribersOverOneConnection) {
  EventHub hub(options_, "default");
  hub.Start();
  ASSERT_TRUE(WaitUntil([&] { return !hub.position().empty(); }, absl::Seconds(5)));
  absl::Mutex mu;
  std::vector<int64_t> by_exec, by_workflow, by_workspace, all;
  hub.Subscribe({.execution_id = "a"}, [&](const FeedEvent& e) {
    absl::MutexLock l(&mu);
    by_exec.push_back(e.seq);
  });
  hub.Subscribe({.workflow_id = "wf-b"}, [&](const FeedEvent& e) {
    absl::MutexLock l(&mu);
    by_workflow.push_back(e.seq);
  });
  hub.Subscribe({.workspace = "ws-2"}, [&](const FeedEvent& e) {
    absl::MutexLock l(&mu);
    by_workspace.push_back(e.seq);
  });
  const uint64_t all_id = hub.Subscribe({}, [&](const FeedEvent& e) {
    absl::MutexLock l(&mu);
    all.push_back(e.seq);
  });
  EventLog log(*pool_, "default");
  ASSERT_THAT(log.Append("a", "wf-a", "ws-1", NodeEvent("a", 1), absl::Hours(1)), IsOk());
  ASSERT_THAT(log.Append("b", "wf-b", "ws-2", NodeEvent("b", 1), absl::Hours(1)), IsOk());
  ASSERT_THAT(log.Append("a", "wf-a", "ws-1", NodeEvent("a", 2), absl::Hours(1)), IsOk());
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::MutexLock l(&mu);
        return all.size() == 3;
      },
      absl::Seconds(5)));
  {
    absl::MutexLock l(&mu);
    EXPECT_THAT(by_exec, ElementsAre(1, 2));
    EXPECT_THAT(by_workflow, ElementsAre(1));
    EXPECT_THAT(by_workspace, ElementsAre(1));
  }
  hub.Unsubscribe(all_id);  // never while holding a lock that a sink takes
  EXPECT_EQ(hub.subscribers(), 3u);
}

TEST_F(EventsTest, HubResumesAfterRedisRestart) {
  testing::RedisServer aof(testing::RedisServer::Options{.append_only = true});
  ASSERT_THAT(aof.Start(), IsOk());
  redis::RedisOptions o = *redis::ParseRedisUrl(aof.url());
  redis::RedisPool pool(o, 2);
  EventHub hub(o, "default");
  hub.Start();
  ASSERT_TRUE(WaitUntil([&] { return !hub.position().empty(); }, absl::Seconds(5)));
  std::atomic<int> got{0};
  hub.Subscribe({}, [&](const FeedEvent&) { got++; });
  EventLog log(pool, "default");
  ASSERT_THAT(log.Append("x", "wf", "", NodeEvent("x", 1), absl::Hours(1)), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return got.load() == 1; }, absl::Seconds(5)));
  aof.Kill();
  ASSERT_THAT(aof.Restart(), IsOk());
  ASSERT_TRUE(
      WaitUntil([&] { return log.Append("x", "wf", "", NodeEvent("x", 2), absl::Hours(1)).ok(); },
                absl::Seconds(5)));
  EXPECT_TRUE(WaitUntil([&] { return got.load() == 2; }, absl::Seconds(5)));
}

}  // namespace
}  // namespace ndx::events
