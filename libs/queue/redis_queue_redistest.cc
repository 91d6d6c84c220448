// RedisQueue against a real redis-server: every transition and the races between them.
#include "libs/queue/redis_queue.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/queue/enqueue_batcher.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/time_scale.h"

namespace ndx::queue {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::ndx::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class QueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::RedisServer(testing::RedisServer::Options{.append_only = true});
    ASSERT_THAT(server_->Start(), IsOk());
  }
  static void TearDownTestSuite() { delete server_; }

  void SetUp() override {
    absl::StatusOr<redis::RedisOptions> opts = redis::ParseRedisUrl(server_->url());
    ASSERT_THAT(opts, IsOk());
    options_ = *opts;
    pool_ = std::make_unique<redis::RedisPool>(options_, 8);
    ASSERT_THAT(Cmd({"FLUSHALL"}), IsOk());
  }

  absl::StatusOr<redis::RedisReply> Cmd(const std::vector<std::string_view>& args) {
    absl::StatusOr<redis::RedisPool::Lease> lease = pool_->Acquire(absl::Seconds(2));
    if (!lease.ok()) return lease.status();
    return (*lease)->Command(args);
  }

  std::unique_ptr<RedisQueue> MakeQueue(QueueOptions o = {}) {
    return std::make_unique<RedisQueue>(*pool_, std::move(o), clock_);
  }

  static NewJob Job(const std::string& id, int priority = 0) {
    return NewJob{.id = id, .payload = absl::StrCat("{\"n\":\"", id, "\"}"), .priority = priority};
  }

  static std::vector<std::string> Ids(const ClaimResult& r) {
    std::vector<std::string> ids;
    for (const ClaimedJob& j : r.jobs) ids.push_back(j.id);
    return ids;
  }

  static testing::RedisServer* server_;
  redis::RedisOptions options_;
  std::unique_ptr<redis::RedisPool> pool_;
  common::FakeClock clock_;
};

testing::RedisServer* QueueTest::server_ = nullptr;

TEST_F(QueueTest, EnqueueClaimCompleteRoundTrip) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("a"), Job("b")}), IsOk());
  absl::StatusOr<QueueStats> stats = q->Stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->waiting, 2);
  clock_.Advance(absl::Milliseconds(1500));
  absl::StatusOr<ClaimResult> claim = q->Claim("w1", 10);
  ASSERT_THAT(claim, IsOk());
  ASSERT_THAT(claim->jobs, SizeIs(2));
  const ClaimedJob& a = claim->jobs[0];
  EXPECT_EQ(a.id, "a");
  EXPECT_EQ(a.payload, "{\"n\":\"a\"}");
  EXPECT_EQ(a.epoch, 1);
  EXPECT_EQ(a.attempt, 1);
  EXPECT_EQ(a.max_attempts, 4);
  EXPECT_EQ(clock_.Now() - a.ready_since, absl::Milliseconds(1500));
  EXPECT_EQ(q->Stats()->active, 2);
  absl::StatusOr<std::vector<CompleteOutcome>> done =
      q->Complete({JobRef{"a", a.epoch}, JobRef{"b", claim->jobs[1].epoch}});
  ASSERT_THAT(done, IsOk());
  EXPECT_THAT(*done, ElementsAre(CompleteOutcome::kCompleted, CompleteOutcome::kCompleted));
  stats = q->Stats();
  EXPECT_EQ(stats->active, 0);
  EXPECT_EQ(stats->completed, 2);
  absl::StatusOr<JobInfo> info = q->Get("a");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->state, JobState::kCompleted);
  EXPECT_EQ(info->attempts, 1);
  EXPECT_EQ(info->worker, "w1");
  EXPECT_TRUE(info->finished.has_value());
}

// Claim and Complete send one ZADD / ZREM per batch, in chunks of 1000 arguments: batches larger
// than a chunk move every job.
TEST_F(QueueTest, LargeBatchesClaimAndCompleteEveryJob) {
  auto q = MakeQueue();
  std::vector<NewJob> jobs;
  for (int i = 0; i < 1203; ++i) jobs.push_back(Job(absl::StrCat("b", i)));
  ASSERT_THAT(q->Enqueue(jobs), IsOk());
  std::vector<JobRef> held;
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<ClaimResult> claim = q->Claim("w", 1000);
    ASSERT_THAT(claim, IsOk());
    for (const ClaimedJob& j : claim->jobs) held.push_back(JobRef{j.id, j.epoch});
  }
  ASSERT_THAT(held, SizeIs(1203));
  EXPECT_EQ(q->Stats()->active, 1203);
  EXPECT_EQ(Cmd({"ZSCORE", q->prefix() + "active", "b1202"})->str(),
            absl::StrCat(absl::ToUnixMillis(clock_.Now() + q->options().lease)));
  absl::StatusOr<std::vector<CompleteOutcome>> done = q->Complete(absl::MakeConstSpan(held));
  ASSERT_THAT(done, IsOk());
  EXPECT_EQ(std::count(done->begin(), done->end(), CompleteOutcome::kCompleted), 1203);
  absl::StatusOr<QueueStats> s = q->Stats();
  EXPECT_EQ(s->active, 0);
  EXPECT_EQ(s->completed, 1203);
  EXPECT_EQ(q->Get("b0")->state, JobState::kCompleted);
  EXPECT_EQ(q->Get("b1202")->state, JobState::kCompleted);
}

TEST_F(QueueTest, LowerPriorityNumberFirstAndFifoWithinAPriority) {
  auto q = MakeQueue();
  ASSERT_THAT(
      q->Enqueue({Job("p5-1", 5), Job("p0-1"), Job("pm3", -3), Job("p5-2", 5), Job("p0-2")}),
      IsOk());
  absl::StatusOr<ClaimResult> claim = q->Claim("w", 10);
  ASSERT_THAT(claim, IsOk());
  EXPECT_THAT(Ids(*claim), ElementsAre("pm3", "p0-1", "p0-2", "p5-1", "p5-2"));
}

TEST_F(QueueTest, ScheduledStartIsDelayedUntilDue) {
  auto q = MakeQueue();
  NewJob later = Job("later");
  later.run_at = clock_.Now() + absl::Seconds(30);
  ASSERT_THAT(q->Enqueue({later, Job("now")}), IsOk());
  EXPECT_EQ(q->Stats()->delayed, 1);
  absl::StatusOr<ClaimResult> claim = q->Claim("w", 10);
  ASSERT_THAT(claim, IsOk());
  EXPECT_THAT(Ids(*claim), ElementsAre("now"));
  ASSERT_TRUE(claim->next_due.has_value());
  EXPECT_EQ(*claim->next_due, clock_.Now() + absl::Seconds(30));
  clock_.Advance(absl::Seconds(30));
  claim = q->Claim("w", 10);
  EXPECT_THAT(Ids(*claim), ElementsAre("later"));
}

TEST_F(QueueTest, IdempotentEnqueueReturnsTheFirstIdAndEnqueuesNothing) {
  auto q = MakeQueue();
  NewJob a = Job("first");
  a.idempotency_key = "ws1:req-42";
  NewJob b = Job("second");
  b.idempotency_key = "ws1:req-42";
  absl::StatusOr<std::vector<EnqueueResult>> r1 = q->Enqueue({a});
  absl::StatusOr<std::vector<EnqueueResult>> r2 = q->Enqueue({b});
  ASSERT_THAT(r1, IsOk());
  ASSERT_THAT(r2, IsOk());
  EXPECT_FALSE((*r1)[0].duplicate);
  EXPECT_TRUE((*r2)[0].duplicate);
  EXPECT_EQ((*r2)[0].id, "first");
  EXPECT_EQ(q->Stats()->waiting, 1);
  EXPECT_THAT(q->Get("second"), StatusIs(absl::StatusCode::kNotFound));
  // The key lives at least as long as the state TTL.
  absl::StatusOr<redis::RedisReply> ttl = Cmd({"TTL", q->prefix() + "idem:ws1:req-42"});
  EXPECT_GT(ttl->integer(), 86000);
}

TEST_F(QueueTest, ConcurrentDuplicatesEnqueueExactlyOnce) {
  auto q = MakeQueue();
  std::atomic<int> firsts{0};
  absl::Mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        NewJob j = Job(absl::StrCat("t", t, "-", i));
        j.idempotency_key = absl::StrCat("req-", i);
        absl::StatusOr<std::vector<EnqueueResult>> r = q->Enqueue({j});
        ASSERT_THAT(r, IsOk());
        if (!(*r)[0].duplicate) firsts++;
        absl::MutexLock lock(&mu);
        ids.insert((*r)[0].id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(firsts.load(), 50);
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(q->Stats()->waiting, 50);
}

TEST_F(QueueTest, TwoConsumersNeverHoldTheSameJob) {
  auto q = MakeQueue();
  std::vector<NewJob> jobs;
  for (int i = 0; i < 2000; ++i) jobs.push_back(Job(absl::StrCat("j", i)));
  ASSERT_THAT(q->Enqueue(jobs), IsOk());
  absl::Mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::thread> consumers;
  for (int c = 0; c < 4; ++c) {
    consumers.emplace_back([&, c] {
      while (true) {
        absl::StatusOr<ClaimResult> r = q->Claim(absl::StrCat("w", c), 7);
        ASSERT_THAT(r, IsOk());
        if (r->jobs.empty()) return;
        absl::MutexLock lock(&mu);
        for (const ClaimedJob& j : r->jobs) claimed.push_back(j.id);
      }
    });
  }
  for (auto& t : consumers) t.join();
  EXPECT_EQ(claimed.size(), 2000u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 2000u);
}

TEST_F(QueueTest, StaleEpochCannotRenewCompleteOrFail) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob first = q->Claim("w1", 1)->jobs.at(0);
  // w1's lease lapses; housekeeping gives the job back; w2 claims it.
  clock_.Advance(q->options().lease + absl::Milliseconds(1));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("t", /*force=*/true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->requeued, 1);
  ClaimedJob second = q->Claim("w2", 1)->jobs.at(0);
  EXPECT_GT(second.epoch, first.epoch);
  EXPECT_EQ(second.attempt, 2);
  EXPECT_THAT(*q->Renew({JobRef{"j", first.epoch}}), ElementsAre(LeaseState::kLost));
  EXPECT_THAT(*q->Complete({JobRef{"j", first.epoch}}), ElementsAre(CompleteOutcome::kRejected));
  EXPECT_EQ(q->Fail({"j", first.epoch}, "{}", true)->kind, FailOutcome::Kind::kRejected);
  EXPECT_THAT(*q->Renew({JobRef{"j", second.epoch}}), ElementsAre(LeaseState::kHeld));
  EXPECT_THAT(*q->Complete({JobRef{"j", second.epoch}}), ElementsAre(CompleteOutcome::kCompleted));
}

TEST_F(QueueTest, TransientFailuresBackOff2s4s8sThenFail) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  const absl::Duration expected[] = {absl::Seconds(2), absl::Seconds(4), absl::Seconds(8)};
  for (int attempt = 1; attempt <= 4; ++attempt) {
    absl::StatusOr<ClaimResult> claim = q->Claim("w", 1);
    ASSERT_THAT(claim, IsOk());
    ASSERT_THAT(claim->jobs, SizeIs(1)) << "attempt " << attempt;
    EXPECT_EQ(claim->jobs[0].attempt, attempt);
    absl::StatusOr<FailOutcome> f =
        q->Fail({"j", claim->jobs[0].epoch}, R"({"message":"HTTP 503","code":"X"})", true);
    ASSERT_THAT(f, IsOk());
    if (attempt < 4) {
      EXPECT_EQ(f->kind, FailOutcome::Kind::kRetrying);
      EXPECT_EQ(f->delay, expected[attempt - 1]);
      EXPECT_THAT(q->Claim("w", 1)->jobs, SizeIs(0)) << "not ready before the backoff";
      clock_.Advance(f->delay);
    } else {
      EXPECT_EQ(f->kind, FailOutcome::Kind::kFailed);
    }
  }
  absl::StatusOr<JobInfo> info = q->Get("j");
  EXPECT_EQ(info->state, JobState::kFailed);
  EXPECT_EQ(info->attempts, 4);
  EXPECT_THAT(info->error_json, HasSubstr("HTTP 503"));
  EXPECT_EQ(q->Stats()->failed, 1);
}

TEST_F(QueueTest, PermanentFailureFailsAtOnce) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob j = q->Claim("w", 1)->jobs.at(0);
  EXPECT_EQ(q->Fail({"j", j.epoch}, R"({"message":"bad"})", false)->kind,
            FailOutcome::Kind::kFailed);
  EXPECT_EQ(q->Get("j")->state, JobState::kFailed);
}

TEST_F(QueueTest, CancelInEveryState) {
  auto q = MakeQueue();
  NewJob delayed = Job("delayed");
  delayed.run_at = clock_.Now() + absl::Hours(1);
  ASSERT_THAT(q->Enqueue({Job("running"), Job("waiting"), delayed}), IsOk());
  ClaimedJob running = q->Claim("w", 1)->jobs.at(0);
  ASSERT_EQ(running.id, "running");

  EXPECT_EQ(*q->Cancel("waiting"), JobState::kCancelled);
  EXPECT_EQ(*q->Cancel("delayed"), JobState::kCancelled);
  EXPECT_EQ(*q->Cancel("running"), JobState::kCancelling);
  EXPECT_EQ(*q->Cancel("running"), JobState::kCancelling);  // idempotent
  EXPECT_THAT(*q->Renew({JobRef{"running", running.epoch}}), ElementsAre(LeaseState::kCancelling));
  EXPECT_THAT(q->AckCancel({"running", running.epoch}), IsOk());
  EXPECT_EQ(q->Get("running")->state, JobState::kCancelled);
  EXPECT_EQ(*q->Cancel("running"), JobState::kCancelled);  // already cancelled: OK
  absl::StatusOr<QueueStats> s = q->Stats();
  EXPECT_EQ(s->cancelled, 3);
  EXPECT_EQ(s->waiting + s->delayed + s->active, 0);
  EXPECT_THAT(q->Claim("w", 10)->jobs, SizeIs(0));

  ASSERT_THAT(q->Enqueue({Job("done")}), IsOk());
  ClaimedJob done = q->Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(q->Complete({JobRef{"done", done.epoch}}), IsOk());
  EXPECT_THAT(q->Cancel("done"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already completed")));
  EXPECT_THAT(q->Cancel("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueTest, DeleteRemovesAFinishedJobAndRefusesALiveOne) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("done"), Job("live")}), IsOk());
  ClaimedJob done = q->Claim("w", 1)->jobs.at(0);
  ASSERT_EQ(done.id, "done");
  ASSERT_THAT(q->Start({.id = "done", .epoch = done.epoch}, R"({"type":"started"})"), IsOk());
  ASSERT_THAT(Cmd({"HSET", q->prefix() + "o:done", "node-1", "{}"}), IsOk());
  ASSERT_THAT(q->Complete({JobRef{"done", done.epoch}}), IsOk());
  ASSERT_EQ(q->Stats()->completed, 1);

  EXPECT_THAT(q->Delete("live"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is waiting; cancel it")));
  ClaimedJob live = q->Claim("w", 1)->jobs.at(0);
  EXPECT_THAT(q->Delete("live"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is running")));
  EXPECT_EQ(q->Get("live")->state, JobState::kActive);  // untouched

  ASSERT_THAT(q->Delete("done"), IsOk());
  for (const char* key : {"j:done", "o:done", "ev:done"}) {
    EXPECT_EQ(Cmd({"EXISTS", q->prefix() + key})->integer(), 0) << key;
  }
  EXPECT_EQ(q->Stats()->completed, 0);
  EXPECT_THAT(q->Get("done"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(q->Delete("done"), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_THAT(q->Fail({"live", live.epoch}, R"({"message":"boom"})", /*transient=*/false), IsOk());
  ASSERT_THAT(q->Delete("live"), IsOk());
  EXPECT_EQ(q->Stats()->failed, 0);
}

TEST_F(QueueTest, CancelRacingCompletionEndsInExactlyOneTerminalState) {
  auto q = MakeQueue();
  int completed = 0, cancelled = 0;
  for (int round = 0; round < 200; ++round) {
    const std::string id = absl::StrCat("r", round);
    ASSERT_THAT(q->Enqueue({Job(id)}), IsOk());
    ClaimedJob j = q->Claim("w", 1)->jobs.at(0);
    absl::StatusOr<JobState> cancel_result;
    absl::StatusOr<std::vector<CompleteOutcome>> complete_result;
    std::thread a([&] { cancel_result = q->Cancel(id); });
    std::thread b([&] { complete_result = q->Complete({JobRef{id, j.epoch}}); });
    a.join();
    b.join();
    ASSERT_THAT(complete_result, IsOk());
    const JobState final_state = q->Get(id)->state;
    if (final_state == JobState::kCompleted) {
      // Completion came first; the cancel saw a finished execution.
      EXPECT_THAT(cancel_result, StatusIs(absl::StatusCode::kFailedPrecondition));
      EXPECT_EQ((*complete_result)[0], CompleteOutcome::kCompleted);
      ++completed;
    } else {
      // The cancel came first: the completion recorded cancelled, never success.
      ASSERT_EQ(final_state, JobState::kCancelled);
      EXPECT_EQ(*cancel_result, JobState::kCancelling);
      EXPECT_EQ((*complete_result)[0], CompleteOutcome::kCancelled);
      ++cancelled;
    }
  }
  EXPECT_EQ(completed + cancelled, 200);
  absl::StatusOr<QueueStats> s = q->Stats();
  EXPECT_EQ(s->completed, completed);
  EXPECT_EQ(s->cancelled, cancelled);
  EXPECT_EQ(s->active, 0);
}

TEST_F(QueueTest, DeadlineTimesOutAWedgedHolder) {
  auto q = MakeQueue();
  NewJob j = Job("slow");
  j.timeout = absl::Seconds(10);
  ASSERT_THAT(q->Enqueue({j}), IsOk());
  ClaimedJob held = q->Claim("wedged", 1)->jobs.at(0);
  // The holder keeps renewing (it is alive) but never finishes.
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(2));
    ASSERT_THAT(*q->Renew({JobRef{"slow", held.epoch}}), ElementsAre(LeaseState::kHeld));
    ASSERT_EQ(q->Housekeep("hk", true)->timed_out, 0);
  }
  clock_.Advance(absl::Seconds(2) - absl::Milliseconds(1));
  ASSERT_EQ(q->Housekeep("hk", true)->timed_out, 0);
  clock_.Advance(absl::Milliseconds(1));  // exactly 10 s after the claim
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->timed_out, 1);
  absl::StatusOr<JobInfo> info = q->Get("slow");
  EXPECT_EQ(info->state, JobState::kTimedOut);
  EXPECT_THAT(info->error_json, HasSubstr("EXECUTION_TIMEOUT"));
  // The wedged holder is fenced off.
  EXPECT_THAT(*q->Renew({JobRef{"slow", held.epoch}}), ElementsAre(LeaseState::kLost));
  EXPECT_THAT(*q->Complete({JobRef{"slow", held.epoch}}), ElementsAre(CompleteOutcome::kRejected));
  EXPECT_EQ(q->Stats()->timed_out, 1);
}

// The active index holds the earlier of the lease expiry and the deadline: a deadline shorter
// than the lease times the job out on time, without waiting for the lease.
TEST_F(QueueTest, ADeadlineEarlierThanTheLeaseTimesOutOnTime) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5)});
  NewJob j = Job("quick");
  j.timeout = absl::Seconds(2);
  ASSERT_THAT(q->Enqueue({j}), IsOk());
  ClaimedJob held = q->Claim("w", 1)->jobs.at(0);
  absl::StatusOr<JobInfo> info = q->Get("quick");
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->lease_expiry, clock_.Now() + absl::Seconds(5));
  EXPECT_EQ(info->deadline, clock_.Now() + absl::Seconds(2));
  clock_.Advance(absl::Seconds(2) - absl::Milliseconds(1));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->timed_out, 0);
  EXPECT_EQ(hk->requeued, 0);
  clock_.Advance(absl::Milliseconds(1));
  hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->timed_out, 1);
  EXPECT_EQ(hk->requeued, 0);
  EXPECT_THAT(hk->timed_out_ids, ElementsAre("quick"));
  info = q->Get("quick");
  EXPECT_EQ(info->state, JobState::kTimedOut);
  EXPECT_EQ(info->stall_count, 0);
  // A finished job reports no lease and no deadline (its hash keeps them, unread).
  EXPECT_EQ(info->lease_expiry, std::nullopt);
  EXPECT_EQ(info->deadline, std::nullopt);
  EXPECT_THAT(*q->Renew({JobRef{"quick", held.epoch}}), ElementsAre(LeaseState::kLost));
  EXPECT_EQ(Cmd({"ZCARD", q->prefix() + "active"})->integer(), 0);
  EXPECT_EQ(q->Housekeep("hk", true)->timed_out, 0) << "timed out once";
}

// Renew moves the lease but never the job's due time past its deadline.
TEST_F(QueueTest, RenewNeverExtendsPastTheDeadline) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5)});
  NewJob j = Job("j");
  j.timeout = absl::Seconds(7);
  ASSERT_THAT(q->Enqueue({j}), IsOk());
  const absl::Time claimed_at = clock_.Now();
  ClaimedJob held = q->Claim("w", 1)->jobs.at(0);
  const std::string active = q->prefix() + "active";
  EXPECT_EQ(Cmd({"ZSCORE", active, "j"})->str(),
            absl::StrCat(absl::ToUnixMillis(claimed_at + absl::Seconds(5))));
  clock_.Advance(absl::Seconds(4));
  ASSERT_THAT(*q->Renew({JobRef{"j", held.epoch}}), ElementsAre(LeaseState::kHeld));
  // The lease runs to 9 s, the deadline is at 7 s: the job is due at 7 s.
  absl::StatusOr<JobInfo> info = q->Get("j");
  EXPECT_EQ(info->lease_expiry, claimed_at + absl::Seconds(9));
  EXPECT_EQ(info->deadline, claimed_at + absl::Seconds(7));
  EXPECT_EQ(Cmd({"ZSCORE", active, "j"})->str(),
            absl::StrCat(absl::ToUnixMillis(claimed_at + absl::Seconds(7))));
  clock_.Advance(absl::Seconds(3) - absl::Milliseconds(1));
  ASSERT_THAT(*q->Renew({JobRef{"j", held.epoch}}), ElementsAre(LeaseState::kHeld));
  EXPECT_EQ(q->Housekeep("hk", true)->timed_out, 0);
  clock_.Advance(absl::Milliseconds(1));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  EXPECT_EQ(hk->timed_out, 1);
  EXPECT_EQ(hk->requeued, 0);
  EXPECT_EQ(q->Get("j")->state, JobState::kTimedOut);
}

// One index, two causes: a holder that stops renewing is stalled (back to wait, another attempt),
// a holder that renews past the deadline is timed out; when both are due at once the lapsed lease
// wins (as when each had its own index and stalled recovery ran first).
TEST_F(QueueTest, StalledAndTimedOutAreToldApart) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5)});
  NewJob silent = Job("silent"), alive = Job("alive"), both = Job("both");
  silent.timeout = absl::Seconds(8);
  alive.timeout = absl::Seconds(8);
  both.timeout = absl::Seconds(5);
  ASSERT_THAT(q->Enqueue({silent, alive, both}), IsOk());
  absl::StatusOr<ClaimResult> claim = q->Claim("w", 3);
  ASSERT_THAT(claim, IsOk());
  ASSERT_THAT(claim->jobs, SizeIs(3));
  const ClaimedJob& alive_job = claim->jobs[1];
  ASSERT_EQ(alive_job.id, "alive");
  clock_.Advance(absl::Seconds(4));
  ASSERT_THAT(*q->Renew({JobRef{"alive", alive_job.epoch}}), ElementsAre(LeaseState::kHeld));
  clock_.Advance(absl::Seconds(1));  // 5 s: silent's and both's leases lapse; both's deadline too
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->requeued, 2);
  EXPECT_EQ(hk->timed_out, 0);
  EXPECT_EQ(q->Get("silent")->state, JobState::kWaiting);
  EXPECT_EQ(q->Get("silent")->stall_count, 1);
  EXPECT_EQ(q->Get("both")->state, JobState::kWaiting);
  EXPECT_EQ(q->Get("silent")->deadline, std::nullopt);
  EXPECT_EQ(q->Get("alive")->state, JobState::kActive);
  clock_.Advance(absl::Seconds(3));  // 8 s: alive's deadline, its lease runs to 9 s
  ASSERT_THAT(*q->Renew({JobRef{"alive", alive_job.epoch}}), ElementsAre(LeaseState::kHeld));
  hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  EXPECT_EQ(hk->timed_out, 1);
  EXPECT_EQ(hk->requeued, 0);
  EXPECT_THAT(hk->timed_out_ids, ElementsAre("alive"));
  EXPECT_EQ(q->Get("alive")->stall_count, 0);
  // The requeued jobs get a fresh deadline with their next claim.
  absl::StatusOr<ClaimResult> again = q->Claim("w2", 2);
  ASSERT_THAT(again->jobs, SizeIs(2));
  EXPECT_EQ(q->Get("silent")->deadline, clock_.Now() + absl::Seconds(8));
}

// A cancelling job whose deadline passes before its lease lapses is timed out; one whose lease
// lapses first becomes cancelled (as before the indexes were merged).
TEST_F(QueueTest, CancellingJobsEndTimedOutOrCancelled) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5)});
  NewJob a = Job("short"), b = Job("silent");
  a.timeout = absl::Seconds(3);
  b.timeout = absl::Seconds(30);
  ASSERT_THAT(q->Enqueue({a, b}), IsOk());
  ASSERT_THAT(q->Claim("w", 2)->jobs, SizeIs(2));
  ASSERT_EQ(*q->Cancel("short"), JobState::kCancelling);
  ASSERT_EQ(*q->Cancel("silent"), JobState::kCancelling);
  clock_.Advance(absl::Seconds(3));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  EXPECT_EQ(hk->timed_out, 1);
  EXPECT_EQ(hk->cancelled, 0);
  EXPECT_EQ(q->Get("short")->state, JobState::kTimedOut);
  clock_.Advance(absl::Seconds(2));
  hk = q->Housekeep("hk", true);
  EXPECT_EQ(hk->cancelled, 1);
  EXPECT_EQ(hk->timed_out, 0);
  EXPECT_EQ(q->Get("silent")->state, JobState::kCancelled);
}

// After an upgrade, jobs claimed by an older version have an entry in the old `deadlines` index
// and an active score that only follows the lease: housekeeping still times them out at their
// deadline, and the old index empties.
TEST_F(QueueTest, LegacyDeadlinesIndexIsHonouredAndDrained) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5)});
  NewJob j = Job("old");
  j.timeout = absl::Seconds(6);
  ASSERT_THAT(q->Enqueue({j, Job("done")}), IsOk());
  absl::StatusOr<ClaimResult> claim = q->Claim("w", 2);
  ASSERT_THAT(claim->jobs, SizeIs(2));
  const std::string deadline = absl::StrCat(absl::ToUnixMillis(clock_.Now() + absl::Seconds(6)));
  // What the older claim.lua and renew.lua left: a deadlines entry, a lease-only active score far
  // away (renewed), and an entry of a job that has ended since.
  ASSERT_THAT(Cmd({"ZADD", q->prefix() + "deadlines", deadline, "old", deadline, "done"}), IsOk());
  const std::string renewed = absl::StrCat(absl::ToUnixMillis(clock_.Now() + absl::Seconds(60)));
  ASSERT_THAT(Cmd({"ZADD", q->prefix() + "active", "XX", renewed, "old"}), IsOk());
  ASSERT_THAT(Cmd({"HSET", q->prefix() + "j:old", "ls", renewed}), IsOk());
  ASSERT_THAT(*q->Complete({JobRef{"done", claim->jobs[1].epoch}}),
              ElementsAre(CompleteOutcome::kCompleted));
  clock_.Advance(absl::Seconds(6) - absl::Milliseconds(1));
  EXPECT_EQ(q->Housekeep("hk", true)->timed_out, 0);
  clock_.Advance(absl::Milliseconds(1));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  EXPECT_EQ(hk->timed_out, 1);
  EXPECT_EQ(q->Get("old")->state, JobState::kTimedOut);
  EXPECT_EQ(q->Get("done")->state, JobState::kCompleted);
  EXPECT_EQ(Cmd({"EXISTS", q->prefix() + "deadlines"})->integer(), 0);
}

TEST_F(QueueTest, StalledJobIsBackWithinLeaseTtlAndFailsPastTheStallLimit) {
  auto q = MakeQueue(QueueOptions{.lease = absl::Seconds(5), .max_stalls = 2});
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  for (int stall = 1; stall <= 3; ++stall) {
    ASSERT_THAT(q->Claim("crashing", 1)->jobs, SizeIs(1));
    clock_.Advance(absl::Seconds(5) - absl::Milliseconds(1));
    EXPECT_EQ(q->Housekeep("hk", true)->requeued, 0) << "lease still valid";
    clock_.Advance(absl::Milliseconds(2));
    absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
    if (stall <= 2) {
      EXPECT_EQ(hk->requeued, 1);
      EXPECT_EQ(q->Get("j")->stall_count, stall);
      EXPECT_EQ(q->Get("j")->state, JobState::kWaiting);
    } else {
      EXPECT_EQ(hk->stall_failed, 1);
    }
  }
  absl::StatusOr<JobInfo> info = q->Get("j");
  EXPECT_EQ(info->state, JobState::kFailed);
  EXPECT_THAT(info->error_json, HasSubstr("stalled 3 times"));
  EXPECT_THAT(info->error_json, HasSubstr("crashing"));
}

TEST_F(QueueTest, HousekeepingRunsOncePerIntervalAcrossProcesses) {
  auto q = MakeQueue(QueueOptions{.housekeeping_interval = absl::Seconds(30)});
  EXPECT_TRUE(q->Housekeep("proc-a")->ran);
  EXPECT_FALSE(q->Housekeep("proc-b")->ran);
  EXPECT_FALSE(q->Housekeep("proc-a")->ran);
  ASSERT_THAT(Cmd({"DEL", q->prefix() + "hk"}), IsOk());  // the interval passes
  EXPECT_TRUE(q->Housekeep("proc-b")->ran);
}

TEST_F(QueueTest, FinishedStateExpiresAndIndexesAreTrimmed) {
  auto q = MakeQueue(QueueOptions{.completion_ttl = absl::Seconds(60), .keep_finished = 3});
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("c", i);
    ASSERT_THAT(q->Enqueue({Job(id)}), IsOk());
    ClaimedJob j = q->Claim("w", 1)->jobs.at(0);
    ASSERT_THAT(Cmd({"HSET", q->prefix() + "o:" + id, "node-1", "{}"}), IsOk());
    ASSERT_THAT(q->Complete({JobRef{id, j.epoch}}), IsOk());
    clock_.Advance(absl::Seconds(1));
  }
  for (const char* key : {"j:c4", "o:c4"}) {
    absl::StatusOr<redis::RedisReply> ttl = Cmd({"TTL", q->prefix() + key});
    EXPECT_GT(ttl->integer(), 0) << key;
    EXPECT_LE(ttl->integer(), 60) << key;
  }
  EXPECT_EQ(q->Stats()->completed, 3);  // the count cap
  // By age: 2 minutes later the next completion trims everything older than the TTL.
  clock_.Advance(absl::Minutes(2));
  ASSERT_THAT(q->Enqueue({Job("late")}), IsOk());
  ClaimedJob late = q->Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(q->Complete({JobRef{"late", late.epoch}}), IsOk());
  EXPECT_EQ(q->Stats()->completed, 1);
  // And the keys really go away: with a 1 s TTL, wait for them to vanish.
  auto short_q = MakeQueue(QueueOptions{.name = "short", .completion_ttl = absl::Seconds(1)});
  ASSERT_THAT(short_q->Enqueue({Job("gone")}), IsOk());
  ClaimedJob gone = short_q->Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(short_q->Complete({JobRef{"gone", gone.epoch}}), IsOk());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Cmd({"EXISTS", short_q->prefix() + "j:gone"})->integer() == 0;
      },
      absl::Seconds(5)));
  EXPECT_THAT(short_q->Get("gone"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueTest, JobsThatExpireWhileWaitingLeaveNothingBehind) {
  auto q = MakeQueue(QueueOptions{.state_ttl = absl::Seconds(1)});
  std::vector<NewJob> jobs;
  for (int i = 0; i < 500; ++i) jobs.push_back(Job(absl::StrCat("e", i), i % 3));
  NewJob later = Job("later");
  later.run_at = clock_.Now() + absl::Hours(1);
  jobs.push_back(later);
  ASSERT_THAT(q->Enqueue(jobs), IsOk());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cmd({"EXISTS", q->prefix() + "j:e0"})->integer() == 0;
      },
      absl::Seconds(5)));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cmd({"EXISTS", q->prefix() + "j:later"})->integer() == 0;
      },
      absl::Seconds(5)));
  // Housekeeping sweeps the indexes a batch at a time.
  for (int i = 0; i < 10; ++i) ASSERT_THAT(q->Housekeep("hk", true), IsOk());
  EXPECT_EQ(Cmd({"ZCARD", q->prefix() + "wait"})->integer(), 0);
  EXPECT_EQ(Cmd({"ZCARD", q->prefix() + "delayed"})->integer(), 0);
  absl::StatusOr<QueueStats> s = q->Stats();
  EXPECT_EQ(s->waiting, 0);
  EXPECT_EQ(s->oldest_waiting, absl::ZeroDuration());
  // And no band keeps counting them.
  absl::StatusOr<redis::RedisReply> bands = Cmd({"HGETALL", q->prefix() + "bands"});
  for (size_t i = 1; i < bands->elements().size(); i += 2) {
    EXPECT_EQ(bands->elements()[i].str(), "0");
  }
}

// Jobs that expire together while waiting (a queue nobody consumed for a state TTL) leave the
// wait index from the heads of the bands, about `housekeeping_batch` entries a run (each run
// short; HousekeepingBacklogGoesInShortRuns has the runs follow each other closely).
TEST_F(QueueTest, HousekeepingSweepsExpiredJobsFromTheHeadsOfTheBands) {
  QueueOptions o{.name = "heads", .state_ttl = absl::Seconds(1), .housekeeping_batch = 100};
  auto q = MakeQueue(o);
  // A live job at the head of band 1 (enqueued first, with a long TTL): the head sweep stops
  // there, and the whole-index sweep finds that band's expired jobs behind it over later runs.
  QueueOptions long_lived = o;
  long_lived.state_ttl = absl::Hours(1);
  ASSERT_THAT(MakeQueue(long_lived)->Enqueue({Job("live", 1)}), IsOk());
  std::vector<NewJob> jobs;
  for (int i = 0; i < 1200; ++i) jobs.push_back(Job(absl::StrCat("x", i), i % 2 == 0 ? 0 : 2));
  for (int i = 0; i < 50; ++i) jobs.push_back(Job(absl::StrCat("behind", i), 1));
  ASSERT_THAT(q->Enqueue(jobs), IsOk());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cmd({"EXISTS", q->prefix() + "j:x1199"})->integer() == 0;
      },
      absl::Seconds(5)));
  ASSERT_EQ(Cmd({"ZCARD", q->prefix() + "wait"})->integer(), 1251);
  // One run looks at up to 100 head entries (the batch; band 1's live head counts as one):
  // bands 0 and 2 hold 600 expired jobs each, so it removes 99 or 100 and says a backlog is left.
  absl::StatusOr<HousekeepingResult> first = q->Housekeep("hk", true);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->more);
  const int64_t after_one = Cmd({"ZCARD", q->prefix() + "wait"})->integer();
  EXPECT_GE(after_one, 1251 - 100);
  EXPECT_LE(after_one, 1251 - 99);
  int runs = 1;
  for (bool more = true; more && runs < 30; ++runs) {
    absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
    ASSERT_THAT(hk, IsOk());
    more = hk->more;
  }
  EXPECT_GE(runs, 12) << "1,200 expired head entries, at most 100 a run";
  EXPECT_LE(runs, 14);
  // Bands 0 and 2 are empty now; band 1's expired jobs sit behind its live head.
  absl::StatusOr<redis::RedisReply> left = Cmd({"ZRANGE", q->prefix() + "wait", "0", "-1"});
  std::set<std::string> ids;
  for (const redis::RedisReply& e : left->elements()) ids.insert(e.str());
  EXPECT_TRUE(ids.count("live"));
  for (const std::string& id : ids) {
    EXPECT_TRUE(id == "live" || absl::StartsWith(id, "behind")) << id;
  }
  // The whole-index sweep (100 entries a run, cursor kept) removes those too.
  for (int i = 0; i < 20 && Cmd({"ZCARD", q->prefix() + "wait"})->integer() > 1; ++i) {
    ASSERT_THAT(q->Housekeep("hk", true), IsOk());
  }
  EXPECT_EQ(Cmd({"ZCARD", q->prefix() + "wait"})->integer(), 1);
  absl::StatusOr<QueueStats> s = q->Stats();
  EXPECT_EQ(s->waiting, 1);
  absl::StatusOr<redis::RedisReply> bands = Cmd({"HGETALL", q->prefix() + "bands"});
  for (size_t i = 0; i + 1 < bands->elements().size(); i += 2) {
    EXPECT_EQ(bands->elements()[i + 1].str(), bands->elements()[i].str() == "1" ? "1" : "0")
        << "band " << bands->elements()[i].str();
  }
  absl::StatusOr<ClaimResult> claimed = q->Claim("w", 10);
  ASSERT_THAT(claimed, IsOk());
  EXPECT_THAT(Ids(*claimed), ElementsAre("live"));
}

// A run that stops at its batch with a backlog left shortens the housekeeping lease to the
// follow-up, so that the next run (in any process) comes within 50 ms instead of the interval;
// the run that clears the backlog leaves the lease at the whole interval.
TEST_F(QueueTest, HousekeepingBacklogGoesInShortRuns) {
  QueueOptions o{.name = "backlog",
                 .state_ttl = absl::Seconds(1),
                 .housekeeping_interval = absl::Seconds(30),
                 .housekeeping_batch = 100,
                 .housekeeping_follow_up = absl::Milliseconds(40)};
  auto q = MakeQueue(o);
  std::vector<NewJob> jobs;
  for (int i = 0; i < 250; ++i) jobs.push_back(Job(absl::StrCat("e", i)));
  ASSERT_THAT(q->Enqueue(jobs), IsOk());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Cmd({"EXISTS", q->prefix() + "j:e249"})->integer() == 0;
      },
      absl::Seconds(5)));
  const std::string hk_key = q->prefix() + "hk";
  // A run by `owner` that wins the lease: whether it left a backlog, and what is left in wait.
  auto run = [&](const std::string& owner) -> std::pair<bool, int64_t> {
    absl::StatusOr<HousekeepingResult> r = q->Housekeep(owner, /*force=*/false);
    EXPECT_THAT(r, IsOk());
    EXPECT_TRUE(r.ok() && r->ran);
    return {r.ok() && r->more, Cmd({"ZCARD", q->prefix() + "wait"})->integer()};
  };
  auto lease_lapsed = [&] { return Cmd({"EXISTS", hk_key})->integer() == 0; };
  EXPECT_EQ(run("a"), std::make_pair(true, int64_t{150}));
  EXPECT_LE(Cmd({"PTTL", hk_key})->integer(), 40);
  // The lease lapses after the follow-up: another process's run takes the next 100.
  ASSERT_TRUE(WaitUntil(lease_lapsed, absl::Seconds(2)));
  EXPECT_EQ(run("b"), std::make_pair(true, int64_t{50}));
  ASSERT_TRUE(WaitUntil(lease_lapsed, absl::Seconds(2)));
  EXPECT_EQ(run("a"), std::make_pair(false, int64_t{0}));
  // Nothing left: the lease keeps the whole interval, and the next call does not run.
  EXPECT_GT(Cmd({"PTTL", hk_key})->integer(), 20000);
  absl::StatusOr<HousekeepingResult> r = q->Housekeep("b", /*force=*/false);
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->ran);
}

TEST_F(QueueTest, WaitingJobsHaveTheStateTtl) {
  auto q = MakeQueue(QueueOptions{.state_ttl = absl::Seconds(600)});
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  absl::StatusOr<redis::RedisReply> ttl = Cmd({"TTL", q->prefix() + "j:j"});
  EXPECT_GT(ttl->integer(), 590);
  EXPECT_LE(ttl->integer(), 600);
}

TEST_F(QueueTest, BackPressureAndPayloadLimit) {
  auto q = MakeQueue(QueueOptions{.max_depth = 3, .max_payload_bytes = 100});
  ASSERT_THAT(q->Enqueue({Job("1"), Job("2")}), IsOk());
  EXPECT_THAT(q->Enqueue({Job("3"), Job("4")}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("queue is full")));
  EXPECT_EQ(q->Stats()->waiting, 2) << "a refused batch enqueues nothing";
  NewJob big = Job("big");
  big.payload = std::string(101, 'x');
  EXPECT_THAT(q->Enqueue({big}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("101 bytes")));
  EXPECT_THAT(q->Enqueue({Job("bad id!")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id")));
  EXPECT_THAT(q->Enqueue({Job("p", 5000)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("priority")));
}

TEST_F(QueueTest, RetryMakesANewJobWithTheCheckpoints) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("old")}), IsOk());
  ClaimedJob j = q->Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(Cmd({"HSET", q->prefix() + "o:old", "node-1", "{\"a\":1}", "node-2", "{\"b\":2}"}),
              IsOk());
  ASSERT_THAT(q->Fail({"old", j.epoch}, R"({"message":"boom"})", false), IsOk());
  absl::StatusOr<EnqueueResult> r = q->Retry("old", "new", "");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->id, "new");
  absl::StatusOr<redis::RedisReply> outputs = Cmd({"HGETALL", q->prefix() + "o:new"});
  EXPECT_EQ(outputs->elements().size(), 4u);
  absl::StatusOr<JobInfo> info = q->Get("new");
  EXPECT_EQ(info->state, JobState::kWaiting);
  EXPECT_EQ(info->retry_of, "old");
  EXPECT_EQ(info->payload, "{\"n\":\"old\"}");
  EXPECT_EQ(q->Claim("w", 1)->jobs.at(0).id, "new");
  // Only failed, timed-out or cancelled executions can be retried.
  EXPECT_THAT(q->Retry("new", "newer", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("running")));
  EXPECT_THAT(q->Retry("missing", "x", ""), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueTest, ReleaseHandsJobsBackWithoutCountingAnAttempt) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob first = q->Claim("w1", 1)->jobs.at(0);
  EXPECT_THAT(*q->Release({JobRef{"j", first.epoch}}), ElementsAre(1));
  ClaimedJob second = q->Claim("w2", 1)->jobs.at(0);
  EXPECT_EQ(second.attempt, 1);
  EXPECT_THAT(*q->Complete({JobRef{"j", first.epoch}}), ElementsAre(CompleteOutcome::kRejected));
}

TEST_F(QueueTest, OldestWaitingAgeAcrossPriorities) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("low", 10)}), IsOk());
  clock_.Advance(absl::Seconds(7));
  ASSERT_THAT(q->Enqueue({Job("high", -10)}), IsOk());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(q->Stats()->oldest_waiting, absl::Seconds(8));
  ASSERT_THAT(q->Claim("w", 1), IsOk());  // takes "high"; "low" is still the oldest
  EXPECT_EQ(q->Stats()->oldest_waiting, absl::Seconds(8));
  ASSERT_THAT(q->Claim("w", 1), IsOk());
  EXPECT_EQ(q->Stats()->oldest_waiting, absl::ZeroDuration());
}

TEST_F(QueueTest, WaitForWorkWakesOnEnqueue) {
  auto q = MakeQueue();
  redis::RedisConnection blocking(options_);
  // Not connected yet: the first wait only connects and returns at once (wake-ups may have been
  // missed while there was no connection), so the caller claims before blocking.
  const absl::Time first = absl::Now();
  ASSERT_THAT(q->WaitForWork(blocking, absl::Seconds(20)), IsOk());
  EXPECT_LT(absl::Now() - first, absl::Seconds(1));
  ASSERT_TRUE(blocking.connected());
  std::atomic<bool> woke{false};
  std::thread consumer([&] {
    ASSERT_THAT(q->WaitForWork(blocking, absl::Seconds(20)), IsOk());
    woke = true;
  });
  // Enqueue once the consumer is blocked (its BLPOP shows in CLIENT LIST).
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<redis::RedisReply> r = Cmd({"CLIENT", "LIST"});
        return r.ok() && r->str().find("cmd=blpop") != std::string::npos;
      },
      absl::Seconds(5)));
  const absl::Time start = absl::Now();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return woke.load(); }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  consumer.join();
}

// Never wedged: jobs waiting in an AOF-backed Redis; kill -9 and restart Redis; consumers that were
// blocked finish them all within 2 s of Redis coming back, with no new enqueue.
TEST_F(QueueTest, ConsumersResumeAfterRedisRestartWithoutNewEnqueue) {
  QueueOptions o;
  common::Clock& real = common::RealClock();
  RedisQueue q(*pool_, o, real);
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::atomic<bool> paused{true};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.emplace_back([&, c] {
      redis::RedisConnection blocking(options_);
      while (!stop) {
        if (!paused) {
          absl::StatusOr<ClaimResult> r = q.Claim(absl::StrCat("c", c), 50);
          if (!r.ok()) {
            // Redis trouble (a stale connection after the restart): retry soon, as the worker
            // does, rather than blocking for a wake-up.
            absl::SleepFor(absl::Milliseconds(20));
            continue;
          }
          if (!r->jobs.empty()) {
            std::vector<JobRef> refs;
            for (const ClaimedJob& j : r->jobs) refs.push_back({j.id, j.epoch});
            if (q.Complete(refs).ok()) done += static_cast<int>(refs.size());
            continue;
          }
        }
        // Blocks for a wake-up, at most 1 s (the polling fallback); errors (Redis down) return
        // at once, so back off a little.
        if (!q.WaitForWork(blocking, absl::Seconds(1)).ok()) absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }
  std::vector<NewJob> jobs;
  for (int i = 0; i < 500; ++i) jobs.push_back(Job(absl::StrCat("j", i)));
  ASSERT_THAT(q.Enqueue(jobs), IsOk());
  server_->Kill();
  ASSERT_THAT(server_->Restart(), IsOk());
  const absl::Time back = absl::Now();
  paused = false;  // consumers may claim from now on; nobody enqueues
  const absl::Duration bound = ::ndx::testing::TimeScaled(absl::Seconds(2));
  EXPECT_TRUE(WaitUntil([&] { return done.load() == 500; }, bound))
      << done.load() << " of 500 done within " << bound << " of Redis coming back";
  EXPECT_LT(absl::Now() - back, bound);
  stop = true;
  for (auto& t : consumers) t.join();
}

TEST_F(QueueTest, HolderSideStartCheckpointAndEventsAreFencedByEpoch) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob first = q->Claim("w1", 1)->jobs.at(0);
  HeldJob held{"j", first.epoch, "wf", "ws"};
  absl::StatusOr<StartResult> start = q->Start(held, R"({"type":"started"})");
  ASSERT_THAT(start, IsOk());
  EXPECT_EQ(start->lease, LeaseState::kHeld);
  EXPECT_EQ(start->started_seq, 1);
  EXPECT_TRUE(start->checkpoints.empty());
  // A node-started and its node-completed with the checkpoint: one script, the events in order.
  const std::string_view node1[] = {R"({"type":"node-started"})", R"({"type":"node-completed"})"};
  absl::StatusOr<NodeEventResult> n = q->NodeEvent(held, node1, "node-1", R"({"v":1})");
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->lease, LeaseState::kHeld);
  EXPECT_EQ(n->seq, 3);
  EXPECT_EQ(Cmd({"LINDEX", q->prefix() + "ev:j", "1"})->str(), node1[0]);
  EXPECT_EQ(Cmd({"LINDEX", q->prefix() + "ev:j", "2"})->str(), node1[1]);
  EXPECT_EQ(Cmd({"XLEN", q->prefix() + "feed"})->integer(), 3);
  // The same call again (the holder retries after a lost reply): the events are not appended
  // twice.
  n = q->NodeEvent(held, node1, "node-1", R"({"v":1})");
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->lease, LeaseState::kHeld);
  EXPECT_EQ(n->seq, 0);
  EXPECT_EQ(Cmd({"LLEN", q->prefix() + "ev:j"})->integer(), 3);
  // The lease lapses; another worker takes over and sees the checkpoint; `started` is not repeated.
  clock_.Advance(q->options().lease + absl::Milliseconds(1));
  ASSERT_EQ(q->Housekeep("hk", true)->requeued, 1);
  ClaimedJob second = q->Claim("w2", 1)->jobs.at(0);
  HeldJob held2{"j", second.epoch, "wf", "ws"};
  start = q->Start(held2, R"({"type":"started"})");
  EXPECT_EQ(start->started_seq, 0);
  ASSERT_EQ(start->checkpoints.size(), 1u);
  EXPECT_EQ(start->checkpoints[0].first, "node-1");
  // The old holder can write nothing more.
  const std::string_view node2[] = {R"({"type":"node-completed"})"};
  n = q->NodeEvent(held, node2, "node-2", "{}");
  EXPECT_EQ(n->lease, LeaseState::kLost);
  EXPECT_EQ(Cmd({"HEXISTS", q->prefix() + "o:j", "node-2"})->integer(), 0);
  EXPECT_EQ(Cmd({"LLEN", q->prefix() + "ev:j"})->integer(), 3);
  EXPECT_EQ(q->Start(held, "{}")->lease, LeaseState::kLost);
}

TEST_F(QueueTest, SuspendParksTheJobUntilDueWithoutCountingAnAttempt) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob first = q->Claim("w1", 1)->jobs.at(0);
  ASSERT_EQ(*q->Suspend({"j", first.epoch, "", ""}, clock_.Now() + absl::Seconds(3)), 1);
  EXPECT_EQ(q->Get("j")->state, JobState::kDelayed);
  EXPECT_EQ(q->Stats()->active, 0);
  EXPECT_THAT(q->Claim("w2", 1)->jobs, SizeIs(0));
  clock_.Advance(absl::Seconds(3));
  ClaimedJob resumed = q->Claim("w2", 1)->jobs.at(0);
  EXPECT_EQ(resumed.attempt, 1);
  EXPECT_GT(resumed.epoch, first.epoch + 1);
  EXPECT_THAT(*q->Complete({JobRef{"j", first.epoch}}), ElementsAre(CompleteOutcome::kRejected));
}

TEST_F(QueueTest, AHolderThatSeesItsDeadlineEndsTheJobTimedOut) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("j")}), IsOk());
  ClaimedJob j = q->Claim("w", 1)->jobs.at(0);
  absl::StatusOr<FailOutcome> f = q->Fail(
      {"j", j.epoch}, R"({"message":"timed out in node-3","code":"EXECUTION_TIMEOUT"})",
      /*transient=*/true, FailEvents{.append = true, .workflow_id = "wf", .timed_out = true});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->kind, FailOutcome::Kind::kTimedOut);
  EXPECT_EQ(q->Get("j")->state, JobState::kTimedOut);
  EXPECT_EQ(q->Stats()->timed_out, 1);
  absl::StatusOr<redis::RedisReply> last = Cmd({"LINDEX", q->prefix() + "ev:j", "-1"});
  EXPECT_THAT(last->str(), HasSubstr("TIMED_OUT"));
}

TEST(ExecutionId, IsAUuidV4AndUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewExecutionId();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '4');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

// Gap 2 of issue #10: Redis dies after a holder's script ran but before its reply arrived, and the
// holder repeats the call. With the call's token, the repeat appends nothing and returns the
// first reply.
TEST_F(QueueTest, ARepeatedCallWithTheSameTokenAppendsItsEventsOnce) {
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("t")}), IsOk());
  ClaimedJob job = q->Claim("w", 1)->jobs.at(0);
  HeldJob held{"t", job.epoch, "wf", "ws"};
  ASSERT_THAT(q->Start(held, R"({"type":"started"})"), IsOk());
  const std::string ev = q->prefix() + "ev:t";
  // Events without a checkpoint (node-started of a long node, node-failed, retrying): the
  // checkpoint cannot tell a repeat, the token does.
  const std::string_view started[] = {R"({"type":"node-started"})"};
  const std::string token = absl::StrCat(job.epoch, ":1");
  absl::StatusOr<NodeEventResult> first = q->NodeEvent(held, started, "", "", false, token);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->seq, 2);
  absl::StatusOr<NodeEventResult> again = q->NodeEvent(held, started, "", "", false, token);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->lease, LeaseState::kHeld);
  EXPECT_EQ(again->seq, 2) << "the first call's reply";
  EXPECT_EQ(Cmd({"LLEN", ev})->integer(), 2);
  EXPECT_EQ(Cmd({"XLEN", q->prefix() + "feed"})->integer(), 2);
  // The next call (a new token) appends.
  const std::string_view failed[] = {R"({"type":"node-failed"})"};
  const std::string token2 = absl::StrCat(job.epoch, ":2");
  ASSERT_EQ(q->NodeEvent(held, failed, "", "", false, token2)->seq, 3);
  ASSERT_EQ(q->NodeEvent(held, failed, "", "", false, token2)->seq, 3);
  EXPECT_EQ(Cmd({"LLEN", ev})->integer(), 3);
  // Without a token a repeat appends again (what the worker did before).
  ASSERT_EQ(q->NodeEvent(held, failed, "", "")->seq, 4);

  // Fail: a retry scheduled once; the repeat gets the same outcome, not "rejected", and no second
  // `retrying` event.
  FailEvents events{.append = true, .workflow_id = "wf", .token = absl::StrCat(job.epoch, ":3")};
  absl::StatusOr<FailOutcome> f = q->Fail({"t", job.epoch}, R"({"message":"x"})", true, events);
  ASSERT_THAT(f, IsOk());
  ASSERT_EQ(f->kind, FailOutcome::Kind::kRetrying);
  const int64_t after_fail = Cmd({"LLEN", ev})->integer();
  absl::StatusOr<FailOutcome> f2 = q->Fail({"t", job.epoch}, R"({"message":"x"})", true, events);
  ASSERT_THAT(f2, IsOk());
  EXPECT_EQ(f2->kind, FailOutcome::Kind::kRetrying);
  EXPECT_EQ(f2->delay, f->delay);
  EXPECT_EQ(f2->attempt, f->attempt);
  EXPECT_EQ(Cmd({"LLEN", ev})->integer(), after_fail);
  EXPECT_EQ(q->Get("t")->state, JobState::kDelayed);

  // Complete: the repeat says completed (not rejected) and appends no second `completed`.
  clock_.Advance(absl::Minutes(1));
  ClaimedJob second = q->Claim("w", 1)->jobs.at(0);
  const Completion c{
      "t", second.epoch, "wf", "ws", R"({"type":"completed"})", absl::StrCat(second.epoch, ":1")};
  EXPECT_THAT(*q->Complete(absl::MakeConstSpan(&c, 1)), ElementsAre(CompleteOutcome::kCompleted));
  const int64_t after_complete = Cmd({"LLEN", ev})->integer();
  EXPECT_THAT(*q->Complete(absl::MakeConstSpan(&c, 1)), ElementsAre(CompleteOutcome::kCompleted));
  EXPECT_EQ(Cmd({"LLEN", ev})->integer(), after_complete);
  // Another holder's stale call is still rejected.
  const Completion stale{"t", job.epoch, "wf", "ws", "", absl::StrCat(job.epoch, ":9")};
  EXPECT_THAT(*q->Complete(absl::MakeConstSpan(&stale, 1)),
              ElementsAre(CompleteOutcome::kRejected));
}

TEST_F(QueueTest, ATimeoutRepeatedWithItsTokenIsNotRejected) {
  // The timed-out path bumps the epoch: the token is checked before the epoch.
  auto q = MakeQueue();
  ASSERT_THAT(q->Enqueue({Job("to")}), IsOk());
  ClaimedJob job = q->Claim("w", 1)->jobs.at(0);
  FailEvents events{.append = true, .workflow_id = "wf", .timed_out = true, .token = "1:1"};
  ASSERT_EQ(q->Fail({"to", job.epoch}, "{}", false, events)->kind, FailOutcome::Kind::kTimedOut);
  const int64_t n = Cmd({"LLEN", q->prefix() + "ev:to"})->integer();
  EXPECT_EQ(q->Fail({"to", job.epoch}, "{}", false, events)->kind, FailOutcome::Kind::kTimedOut);
  EXPECT_EQ(Cmd({"LLEN", q->prefix() + "ev:to"})->integer(), n);
}

// Gap 1 of issue #10: with a history, an ended job's keys get no completion TTL until its end is
// recorded (MarkRecorded); then they expire as any finished job's.
TEST_F(QueueTest, EndsWaitUnrecordedWithoutTtlUntilMarkedRecordedThenExpire) {
  auto q = MakeQueue(QueueOptions{.name = "hist",
                                  .completion_ttl = absl::Seconds(1),
                                  .history_pending = true,
                                  .history_grace = absl::Seconds(10)});
  const std::string p = q->prefix();
  ASSERT_THAT(q->Enqueue({Job("done"), Job("failed"), Job("cancelled"), Job("waiting")}), IsOk());
  absl::StatusOr<ClaimResult> claim = q->Claim("w", 3);
  ASSERT_THAT(claim, IsOk());
  ASSERT_THAT(claim->jobs, SizeIs(3));
  for (const ClaimedJob& j : claim->jobs) {
    ASSERT_THAT(Cmd({"HSET", p + "o:" + j.id, "node-1", R"({"status":"completed"})"}), IsOk());
    ASSERT_THAT(q->Start({j.id, j.epoch, "wf", "ws"}, R"({"type":"started"})"), IsOk());
  }
  ASSERT_THAT(q->Complete({JobRef{"done", claim->jobs[0].epoch}}), IsOk());
  ASSERT_THAT(q->Fail({"failed", claim->jobs[1].epoch}, R"({"message":"no"})", false), IsOk());
  ASSERT_EQ(*q->Cancel("cancelled"), JobState::kCancelling);
  ASSERT_THAT(q->AckCancel({"cancelled", claim->jobs[2].epoch}), IsOk());
  ASSERT_EQ(*q->Cancel("waiting"), JobState::kCancelled);
  const std::vector<std::string> ended = {"done", "failed", "cancelled", "waiting"};
  for (const std::string& id : ended) {
    for (const std::string& key : {"j:" + id, "ev:" + id}) {
      EXPECT_EQ(Cmd({"TTL", p + key})->integer(), -1) << key << ": no TTL while unrecorded";
    }
  }
  EXPECT_EQ(Cmd({"TTL", p + "o:done"})->integer(), -1);
  // Housekeeping's view: none is older than the grace period yet; later, all are.
  EXPECT_THAT(*q->Unrecorded(absl::Seconds(10), 100), SizeIs(0));
  clock_.Advance(absl::Seconds(11));
  EXPECT_THAT(*q->Unrecorded(absl::Seconds(10), 100), SizeIs(4));
  // Long after the completion TTL, everything is still there to read how it ended.
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(q->Get("done")->state, JobState::kCompleted);
  EXPECT_EQ(q->Get("failed")->state, JobState::kFailed);
  EXPECT_EQ(q->Get("cancelled")->state, JobState::kCancelled);
  EXPECT_EQ(q->Get("waiting")->state, JobState::kCancelled);
  // Recorded: off the index, and the keys expire after the completion TTL.
  EXPECT_EQ(*q->MarkRecorded(ended), 4);
  EXPECT_EQ(*q->MarkRecorded(ended), 0) << "a repeat changes nothing";
  EXPECT_THAT(*q->Unrecorded(absl::ZeroDuration(), 100), SizeIs(0));
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (const std::string& id : ended) {
          if (Cmd({"EXISTS", p + "j:" + id, p + "ev:" + id, p + "o:" + id})->integer() != 0) {
            return false;
          }
        }
        return true;
      },
      absl::Seconds(5)));
  // Without history_pending nothing changes: the TTL starts at the end.
  auto plain = MakeQueue(QueueOptions{.name = "plain", .completion_ttl = absl::Seconds(60)});
  ASSERT_THAT(plain->Enqueue({Job("x")}), IsOk());
  ClaimedJob x = plain->Claim("w", 1)->jobs.at(0);
  ASSERT_THAT(plain->Complete({JobRef{"x", x.epoch}}), IsOk());
  EXPECT_GT(Cmd({"TTL", plain->prefix() + "j:x"})->integer(), 0);
  EXPECT_EQ(Cmd({"EXISTS", plain->prefix() + "unrecorded"})->integer(), 0);
}

TEST_F(QueueTest, HousekeepingEndsWaitUnrecordedAndDeleteClearsTheEntry) {
  auto q = MakeQueue(QueueOptions{.name = "hist-hk", .max_stalls = 0, .history_pending = true});
  ASSERT_THAT(q->Enqueue({Job("s")}), IsOk());
  ASSERT_THAT(q->Claim("w", 1), IsOk());
  clock_.Advance(q->options().lease + absl::Milliseconds(1));
  absl::StatusOr<HousekeepingResult> hk = q->Housekeep("hk", true);
  ASSERT_THAT(hk, IsOk());
  ASSERT_EQ(hk->stall_failed, 1);
  EXPECT_EQ(Cmd({"TTL", q->prefix() + "j:s"})->integer(), -1);
  EXPECT_THAT(*q->Unrecorded(absl::ZeroDuration(), 10), ElementsAre("s"));
  ASSERT_THAT(q->Delete("s"), IsOk());
  EXPECT_THAT(*q->Unrecorded(absl::ZeroDuration(), 10), SizeIs(0));
}

// The group commit's batch: every job succeeds or fails on its own. Two jobs with one idempotency
// key in the same call get one id; an oversized job and the job past max_depth get their own
// errors; the others are enqueued and nothing is written for the refused ones.
TEST_F(QueueTest, EnqueueEachGivesEveryJobItsOwnResult) {
  auto q = MakeQueue(QueueOptions{.max_depth = 3, .max_payload_bytes = 100});
  ASSERT_THAT(q->Enqueue({Job("old")}), IsOk());
  NewJob a = Job("a"), b = Job("b"), big = Job("big"), d = Job("d"), e = Job("e");
  a.idempotency_key = b.idempotency_key = "same";
  e.idempotency_key = "e-key";
  big.payload = std::string(200, 'x');
  absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> r = q->EnqueueEach({a, b, big, d, e});
  ASSERT_THAT(r, IsOk());
  ASSERT_THAT(*r, SizeIs(5));
  ASSERT_THAT((*r)[0], IsOk());
  EXPECT_EQ((*r)[0]->id, "a");
  EXPECT_FALSE((*r)[0]->duplicate);
  ASSERT_THAT((*r)[1], IsOk());
  EXPECT_EQ((*r)[1]->id, "a");
  EXPECT_TRUE((*r)[1]->duplicate);
  EXPECT_THAT((*r)[2], StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("job data")));
  ASSERT_THAT((*r)[3], IsOk());
  EXPECT_EQ((*r)[3]->id, "d");
  EXPECT_THAT((*r)[4],
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("queue is full: 3")));
  EXPECT_EQ(Cmd({"ZCARD", q->prefix() + "wait"})->integer(), 3);
  EXPECT_EQ(Cmd({"EXISTS", q->prefix() + "j:e"})->integer(), 0);
  EXPECT_EQ(Cmd({"EXISTS", q->prefix() + "j:big"})->integer(), 0);
  // The refused job left no idempotency record: once there is room, its retry gets a new job.
  ASSERT_THAT(q->Claim("w", 1), IsOk());
  absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> again = q->EnqueueEach({e});
  ASSERT_THAT(again, IsOk());
  ASSERT_THAT((*again)[0], IsOk());
  EXPECT_EQ((*again)[0]->id, "e");
  EXPECT_FALSE((*again)[0]->duplicate);
  // FIFO within a priority holds across calls (one sequence block per call).
  absl::StatusOr<ClaimResult> claimed = q->Claim("w", 10);
  ASSERT_THAT(claimed, IsOk());
  EXPECT_THAT(Ids(*claimed), ElementsAre("a", "d", "e"));
}

// Jobs submitted while a batch is in flight go out together as the next batch (one EnqueueEach),
// each with its own result. Redis is held with CLIENT PAUSE so that the first batch is surely in
// flight while the others arrive.
TEST_F(QueueTest, BatcherSendsJobsThatArriveDuringARoundTripAsOneBatch) {
  common::Clock& real = common::RealClock();
  RedisQueue q(*pool_, QueueOptions{}, real);
  EnqueueBatcher batcher(q);
  ASSERT_THAT(batcher.Enqueue(Job("warm")), IsOk());  // loads the script
  ASSERT_THAT(Cmd({"CLIENT", "PAUSE", "500", "WRITE"}), IsOk());
  absl::StatusOr<EnqueueResult> first = absl::UnknownError("not done");
  std::thread sender([&] { first = batcher.Enqueue(Job("first")); });
  ASSERT_TRUE(
      WaitUntil([&] { return batcher.sending() && batcher.pending() == 0; }, absl::Seconds(5)));
  constexpr int kFollowers = 20;
  absl::Mutex mu;
  std::vector<absl::StatusOr<EnqueueResult>> results;
  for (int i = 0; i < kFollowers; ++i) {
    NewJob job = Job(absl::StrCat("f", i));
    if (i < 2) job.idempotency_key = "dup";  // two copies of one request in the same batch
    batcher.Submit(std::move(job), absl::InfiniteFuture(), [&](absl::StatusOr<EnqueueResult> r) {
      absl::MutexLock lock(&mu);
      results.push_back(std::move(r));
    });
  }
  sender.join();  // the sender returns once nothing is pending: both batches are done
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(batcher.batches(), 3);  // warm, first, and the 20 followers together
  EXPECT_EQ(batcher.jobs(), 2 + kFollowers);
  absl::MutexLock lock(&mu);
  ASSERT_THAT(results, SizeIs(kFollowers));
  std::set<std::string> ids;
  int duplicates = 0;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    ids.insert(r->id);
    duplicates += r->duplicate ? 1 : 0;
  }
  EXPECT_EQ(duplicates, 1);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kFollowers - 1));
  EXPECT_EQ(Cmd({"ZCARD", q.prefix() + "wait"})->integer(), 2 + kFollowers - 1);
}

// A job whose caller's deadline passed while it waited for its batch is not enqueued.
TEST_F(QueueTest, BatcherDropsJobsWhoseDeadlinePassedWhileWaiting) {
  common::Clock& real = common::RealClock();
  RedisQueue q(*pool_, QueueOptions{}, real);
  EnqueueBatcher batcher(q);
  ASSERT_THAT(batcher.Enqueue(Job("warm")), IsOk());
  ASSERT_THAT(Cmd({"CLIENT", "PAUSE", "300", "WRITE"}), IsOk());
  std::thread sender([&] { EXPECT_THAT(batcher.Enqueue(Job("first")), IsOk()); });
  ASSERT_TRUE(
      WaitUntil([&] { return batcher.sending() && batcher.pending() == 0; }, absl::Seconds(5)));
  absl::Notification late_done;
  absl::StatusOr<EnqueueResult> late = absl::UnknownError("not done");
  batcher.Submit(Job("late"), absl::Now() + absl::Milliseconds(50),
                 [&](absl::StatusOr<EnqueueResult> r) {
                   late = std::move(r);
                   late_done.Notify();
                 });
  sender.join();
  ASSERT_TRUE(late_done.HasBeenNotified());
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(Cmd({"EXISTS", q.prefix() + "j:late"})->integer(), 0);
}

// Redis dies while a batch is in flight and more jobs wait: every caller gets UNAVAILABLE within
// a bound, and after Redis is back (from its AOF) each request, retried with its idempotency key,
// exists exactly once.
TEST_F(QueueTest, BatcherFailsEveryWaitingJobWhenRedisDiesAndRetriesEnqueueOnce) {
  common::Clock& real = common::RealClock();
  RedisQueue q(*pool_, QueueOptions{}, real);
  EnqueueBatcher batcher(q);
  ASSERT_THAT(batcher.Enqueue(Job("warm")), IsOk());
  ASSERT_THAT(Cmd({"CLIENT", "PAUSE", "2000", "WRITE"}), IsOk());
  constexpr int kJobs = 10;
  auto job = [](int i) {
    NewJob j = Job(absl::StrCat("r", i));
    j.idempotency_key = absl::StrCat("req-", i);
    return j;
  };
  absl::Mutex mu;
  std::vector<absl::Status> errors;
  auto record = [&](absl::StatusOr<EnqueueResult> r) {
    absl::MutexLock lock(&mu);
    errors.push_back(r.status());
  };
  const absl::Time start = absl::Now();
  std::thread sender([&] { batcher.Submit(job(0), absl::InfiniteFuture(), record); });
  ASSERT_TRUE(
      WaitUntil([&] { return batcher.sending() && batcher.pending() == 0; }, absl::Seconds(5)));
  for (int i = 1; i < kJobs; ++i) batcher.Submit(job(i), absl::InfiniteFuture(), record);
  server_->Kill();
  sender.join();
  const absl::Duration took = absl::Now() - start;
  {
    absl::MutexLock lock(&mu);
    ASSERT_THAT(errors, SizeIs(kJobs));
    for (const absl::Status& s : errors) EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_LT(took, absl::Seconds(1.5)) << "the pause was 2 s: the callers did not wait it out";
  ASSERT_THAT(server_->Restart(), IsOk());
  // The paused script never ran; the retries enqueue each request once, with fresh ids.
  std::vector<NewJob> retries;
  for (int i = 0; i < kJobs; ++i) {
    NewJob j = job(i);
    j.id = absl::StrCat("retry", i);
    retries.push_back(j);
  }
  absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> r;
  ASSERT_TRUE(WaitUntil([&] { return (r = q.EnqueueEach(retries)).ok(); }, absl::Seconds(5)));
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_THAT((*r)[i], IsOk());
    EXPECT_FALSE((*r)[i]->duplicate);
  }
  EXPECT_EQ(Cmd({"ZCARD", q.prefix() + "wait"})->integer(), 1 + kJobs);  // warm + the retries
  absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> again = q.EnqueueEach(retries);
  ASSERT_THAT(again, IsOk());
  for (const auto& x : *again) EXPECT_TRUE(x.ok() && x->duplicate);
  EXPECT_EQ(Cmd({"ZCARD", q.prefix() + "wait"})->integer(), 1 + kJobs);
}

}  // namespace
}  // namespace ndx::queue
