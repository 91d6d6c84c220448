// EventStream.Subscribe over real gRPC (loopback) against a real redis-server: replay, live
// following across the replay/live boundary, reconnects, slow consumers, unknown executions, and
// many subscribers at once.
#include "services/queue/event_stream_service.h"

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/common/grpc_server.h"
#include "libs/events/event_json.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/time_scale.h"

namespace ndx::queue {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::TimeScaled;
using ::ndx::testing::WaitUntil;
using ::testing::HasSubstr;

// Reads one subscription with the callback API, recording every seq; optionally stalls.
class Collector : public grpc::ClientReadReactor<v1::ExecutionEvent> {
 public:
  Collector(v1::EventStream::Stub* stub, v1::SubscribeRequest request, bool start_paused = false)
      : paused_(start_paused) {
    stub->async()->Subscribe(&context_, &request, this);
    // The first read (or, paused, a hold) goes in before StartCall: a call the server ends at
    // once (NOT_FOUND) may otherwise be done, and its call object freed, before StartRead
    // (UBSan: "member call ... does not point to an object of type ClientCallbackReader").
    if (paused_) {
      AddHold();
    } else {
      StartRead(&event_);
    }
    StartCall();
  }
  // gRPC uses the reactor until OnDone: a test that returns early (a failed ASSERT) must not free
  // it under a call still running (ASan: heap-use-after-free in a gRPC callback thread).
  ~Collector() override {
    context_.TryCancel();
    {
      absl::MutexLock lock(&mu_);
      if (paused_) {  // never resumed: let the cancelled call finish
        paused_ = false;
        RemoveHold();
      }
    }
    done_.WaitForNotification();
  }
  void Resume() {
    absl::MutexLock lock(&mu_);
    if (!paused_) return;
    paused_ = false;
    StartRead(&event_);
    RemoveHold();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    {
      absl::MutexLock lock(&mu_);
      seqs_.push_back(event_.seq());
      types_.push_back(event_.type_name());
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& s) override {
    {
      absl::MutexLock lock(&mu_);
      status_ = s;
    }
    done_.Notify();  // last: the destructor may free this as soon as it is notified
  }
  bool WaitDone(absl::Duration d) { return done_.WaitForNotificationWithTimeout(TimeScaled(d)); }
  std::vector<int64_t> seqs() {
    absl::MutexLock lock(&mu_);
    return seqs_;
  }
  std::vector<std::string> types() {
    absl::MutexLock lock(&mu_);
    return types_;
  }
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  v1::ExecutionEvent event_;
  absl::Mutex mu_;
  bool paused_;
  std::vector<int64_t> seqs_;
  std::vector<std::string> types_;
  grpc::Status status_;
  absl::Notification done_;
};

// Resident memory of this process, in bytes.
int64_t RssBytes() {
  const std::string status = testing::ReadFile("/proc/self/status");
  const size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::strtoll(status.c_str() + at + 6, nullptr, 10) * 1024;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

class EventStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new testing::RedisServer();
    ASSERT_THAT(redis_->Start(), IsOk());
  }
  static void TearDownTestSuite() { delete redis_; }

  void SetUp() override { Start(EventStreamService::Options{}); }
  void TearDown() override {
    server_.reset();
    service_.reset();
  }

  void Start(EventStreamService::Options options) {
    server_.reset();
    service_.reset();
    redis_options_ = *redis::ParseRedisUrl(redis_->url());
    pool_ = std::make_unique<redis::RedisPool>(redis_options_, 8);
    {
      auto c = pool_->Acquire(absl::Seconds(1));
      ASSERT_THAT((*c)->Command({"FLUSHALL"}), IsOk());
    }
    log_ = std::make_unique<events::EventLog>(*pool_, "default");
    service_ = std::make_unique<EventStreamService>(
        *pool_, redis_options_, options,
        [this](const std::string& id, const std::string& ws) -> absl::StatusOr<std::string> {
          absl::StatusOr<bool> exists = log_->Exists(id);
          if (!exists.ok()) return exists.status();
          if (!*exists) return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
          return std::string("default");
        });
    absl::StatusOr<common::GrpcServer> server = common::StartGrpcServer(
        "127.0.0.1:0", {{service_.get(), v1::EventStream::service_full_name()}});
    ASSERT_THAT(server, IsOk());
    server_ = std::make_unique<common::GrpcServer>(*std::move(server));
    stub_ = v1::EventStream::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  }

  int64_t Append(const std::string& exec, const std::string& type, size_t pad = 0) {
    events::Event e;
    e.type = type;
    e.execution_id = exec;
    e.workflow_id = "wf";
    e.timestamp = absl::Now();
    if (pad > 0) e.data = {{"pad", std::string(pad, 'x')}};
    absl::StatusOr<int64_t> seq =
        log_->Append(exec, "wf", "ws-1", events::ToJson(e), absl::Hours(1));
    EXPECT_THAT(seq, IsOk());
    return seq.ok() ? *seq : -1;
  }

  static v1::SubscribeRequest ForExecution(const std::string& id, int64_t after = 0) {
    v1::SubscribeRequest r;
    r.set_execution_id(id);
    r.set_after_seq(after);
    return r;
  }

  static testing::RedisServer* redis_;
  redis::RedisOptions redis_options_;
  std::unique_ptr<redis::RedisPool> pool_;
  std::unique_ptr<events::EventLog> log_;
  std::unique_ptr<EventStreamService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::EventStream::Stub> stub_;
};

testing::RedisServer* EventStreamTest::redis_ = nullptr;

TEST_F(EventStreamTest, ReplaysFromZeroMiddleAndEndThenFollowsLiveAndEndsAtTheTerminalEvent) {
  for (int i = 0; i < 5; ++i) Append("e", "node-started");
  Collector from_zero(stub_.get(), ForExecution("e", 0));
  Collector from_middle(stub_.get(), ForExecution("e", 3));
  Collector from_end(stub_.get(), ForExecution("e", 5));
  ASSERT_TRUE(WaitUntil([&] { return from_zero.seqs().size() == 5; }, absl::Seconds(5)));
  ASSERT_TRUE(WaitUntil([&] { return from_middle.seqs().size() == 2; }, absl::Seconds(5)));
  Append("e", "node-completed");
  Append("e", "completed");
  for (Collector* c : {&from_zero, &from_middle, &from_end}) {
    ASSERT_TRUE(c->WaitDone(absl::Seconds(5)));
    EXPECT_TRUE(c->status().ok()) << c->status().error_message();
  }
  EXPECT_EQ(from_zero.seqs(), Range(1, 7));
  EXPECT_EQ(from_middle.seqs(), Range(4, 7));
  EXPECT_EQ(from_end.seqs(), Range(6, 7));
  EXPECT_EQ(from_zero.types().back(), "completed");
  EXPECT_TRUE(WaitUntil([&] { return service_->subscriptions() == 0; }, absl::Seconds(5)));
}

TEST_F(EventStreamTest, SubscribersRacingAppendsEachSeeExactlyOneToN) {
  constexpr int kEvents = 3000;
  std::vector<std::unique_ptr<Collector>> collectors;
  Append("race", "started");
  std::thread writer([&] {
    for (int i = 2; i < kEvents; ++i) Append("race", "node-completed");
    Append("race", "completed");
  });
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    absl::SleepFor(absl::Microseconds(std::uniform_int_distribution<int>(0, 20000)(rng)));
    collectors.push_back(std::make_unique<Collector>(stub_.get(), ForExecution("race", 0)));
  }
  writer.join();
  for (auto& c : collectors) {
    ASSERT_TRUE(c->WaitDone(absl::Seconds(20)));
    ASSERT_TRUE(c->status().ok()) << c->status().error_message();
    EXPECT_EQ(c->seqs(), Range(1, kEvents));
  }
}

TEST_F(EventStreamTest, AReconnectWithTheLastSeqMissesNothing) {
  for (int i = 0; i < 10; ++i) Append("r", "node-started");
  auto first = std::make_unique<Collector>(stub_.get(), ForExecution("r", 0));
  ASSERT_TRUE(WaitUntil([&] { return first->seqs().size() == 10; }, absl::Seconds(5)));
  first->Cancel();
  ASSERT_TRUE(first->WaitDone(absl::Seconds(5)));
  const int64_t last = first->seqs().back();
  for (int i = 0; i < 10; ++i) Append("r", "node-started");  // while disconnected
  Collector second(stub_.get(), ForExecution("r", last));
  Append("r", "failed");
  ASSERT_TRUE(second.WaitDone(absl::Seconds(5)));
  EXPECT_EQ(second.seqs(), Range(11, 21));
}

TEST_F(EventStreamTest, UnknownOrExpiredExecutionIsNotFound) {
  Collector c(stub_.get(), ForExecution("nobody"));
  ASSERT_TRUE(c.WaitDone(absl::Seconds(5)));
  EXPECT_EQ(c.status().error_code(), grpc::StatusCode::NOT_FOUND);
  // Expiry: a log whose TTL passed is unknown too.
  Append("short", "started");
  {
    auto conn = pool_->Acquire(absl::Seconds(1));
    ASSERT_THAT((*conn)->Command({"PEXPIRE", "ndx:{default}:ev:short", "1"}), IsOk());
  }
  ASSERT_TRUE(WaitUntil([&] { return !*log_->Exists("short"); }, absl::Seconds(5)));
  Collector expired(stub_.get(), ForExecution("short"));
  ASSERT_TRUE(expired.WaitDone(absl::Seconds(5)));
  EXPECT_EQ(expired.status().error_code(), grpc::StatusCode::NOT_FOUND);
  v1::SubscribeRequest empty;
  Collector bad(stub_.get(), empty);
  ASSERT_TRUE(bad.WaitDone(absl::Seconds(5)));
  EXPECT_EQ(bad.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EventStreamTest, AClientThatStopsReadingIsCutOffWithResourceExhausted) {
  // The stall timeout is scaled too: under the sanitizers a reader that keeps reading (the
  // resumed one below, 400 events of 64 KB) can take longer than 500 ms over one event; 1.5 s
  // was once not enough under TSan on a slow 2-core machine.
  Start(EventStreamService::Options{.max_buffered = 20,
                                    .stall_timeout = TimeScaled(absl::Seconds(1))});
  Append("slow", "started");
  Collector slow(stub_.get(), ForExecution("slow"), /*start_paused=*/true);
  // Large events fill gRPC's flow-control windows, then the subscription's own buffer.
  for (int i = 0; i < 400; ++i) Append("slow", "node-completed", 64 * 1024);
  // The server gives up on the stalled write after stall_timeout; the client then reads what was
  // in flight and the status.
  ASSERT_TRUE(WaitUntil([&] { return service_->subscriptions() == 0; }, absl::Seconds(20)));
  slow.Resume();
  ASSERT_TRUE(slow.WaitDone(absl::Seconds(20)));
  EXPECT_EQ(slow.status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(slow.status().error_message(), HasSubstr("after_seq"));
  // What it did receive is a gap-free prefix; resuming from there gets the rest.
  const std::vector<int64_t> got = slow.seqs();
  EXPECT_EQ(got, Range(1, static_cast<int64_t>(got.size())));
  Append("slow", "completed");
  Collector resumed(stub_.get(), ForExecution("slow", got.empty() ? 0 : got.back()));
  ASSERT_TRUE(resumed.WaitDone(absl::Seconds(20)));
  EXPECT_TRUE(resumed.status().ok()) << resumed.status().error_message();
  EXPECT_EQ(resumed.seqs().back(), 402);
}

TEST_F(EventStreamTest, AReaderSlowerThanTheWriterCatchesUpFromTheLogWithoutLoss) {
  Start(EventStreamService::Options{.max_buffered = 5});
  Append("lag", "started");
  Collector reader(stub_.get(), ForExecution("lag"));
  for (int i = 0; i < 2000; ++i) Append("lag", "node-completed", 512);
  Append("lag", "completed");
  ASSERT_TRUE(reader.WaitDone(absl::Seconds(30)));
  EXPECT_TRUE(reader.status().ok()) << reader.status().error_message();
  EXPECT_EQ(reader.seqs(), Range(1, 2002));
}

TEST_F(EventStreamTest, WorkflowAndAllFeedsFollowLiveWithCursors) {
  v1::SubscribeRequest by_workflow;
  by_workflow.set_workflow_id("wf");
  v1::SubscribeRequest all;
  all.mutable_all();
  all.set_workspace_id("ws-other");  // sees nothing of ws-1
  Collector wf(stub_.get(), by_workflow);
  Collector other(stub_.get(), all);
  ASSERT_TRUE(WaitUntil([&] { return service_->subscriptions() == 2; }, absl::Seconds(5)));
  // The feed readers start at the feed's end; give them a moment to be positioned.
  absl::SleepFor(absl::Milliseconds(100));
  Append("a", "started");
  Append("b", "started");
  ASSERT_TRUE(WaitUntil([&] { return wf.seqs().size() == 2; }, absl::Seconds(5)));
  EXPECT_TRUE(other.seqs().empty());
  wf.Cancel();
  other.Cancel();
  ASSERT_TRUE(wf.WaitDone(absl::Seconds(5)));
  ASSERT_TRUE(other.WaitDone(absl::Seconds(5)));
}

TEST_F(EventStreamTest, AThousandSubscribersOnOneServer) {
  constexpr int kExecutions = 100, kPerExecution = 10, kEvents = 20;
  for (int e = 0; e < kExecutions; ++e) Append(absl::StrCat("x", e), "started");
  const int64_t rss_before = RssBytes();
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int e = 0; e < kExecutions; ++e) {
    for (int s = 0; s < kPerExecution; ++s) {
      collectors.push_back(
          std::make_unique<Collector>(stub_.get(), ForExecution(absl::StrCat("x", e))));
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return service_->subscriptions() == 1000; }, absl::Seconds(20)));
  for (int i = 2; i < kEvents; ++i) {
    for (int e = 0; e < kExecutions; ++e) Append(absl::StrCat("x", e), "node-completed");
  }
  for (int e = 0; e < kExecutions; ++e) Append(absl::StrCat("x", e), "completed");
  for (auto& c : collectors) {
    ASSERT_TRUE(c->WaitDone(absl::Seconds(30)));
    ASSERT_TRUE(c->status().ok()) << c->status().error_message();
    ASSERT_EQ(c->seqs(), Range(1, kEvents));
  }
  EXPECT_TRUE(WaitUntil([&] { return service_->subscriptions() == 0; }, absl::Seconds(5)));
  // Server and clients share this process: 1,000 streams cost well under 100 KB each. ASan's
  // redzones, shadow memory and quarantine multiply every allocation (about 2-3x), so its build
  // allows 3x. TSan's shadow (2x the application memory) and metadata, and an allocator that
  // returns freed memory later, put the same streams at 237-252 MB: its build allows 4x.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int64_t kLimit = int64_t{300} << 20;
#elif defined(__SANITIZE_THREAD__)
  constexpr int64_t kLimit = int64_t{400} << 20;
#else
  constexpr int64_t kLimit = int64_t{100} << 20;
#endif
  EXPECT_LT(RssBytes() - rss_before, kLimit);
}

}  // namespace
}  // namespace ndx::queue
