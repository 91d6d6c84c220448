// The history's side of issue #10's "0 stuck": an execution that ended in Redis while the process
// that ended it died before its history write, with PostgreSQL down for longer than the completion
// TTL, still ends in the history with the right status (service::RecordUnrecorded). Real Redis and
// PostgreSQL, one of each per binary.
#include "libs/service/history.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/status_macros.h"
#include "libs/queue/redis_queue.h"
#include "libs/store/migrations.h"
#include "libs/store/outbox_store.h"
#include "libs/store/postgres_execution_store.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::service {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class HistoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new ndx::testing::PostgresServer();
    redis_server_ = new ndx::testing::RedisServer();
    setup_ = new absl::Status(StartServers());
  }
  static void TearDownTestSuite() {
    delete pool_;
    delete setup_;
    delete redis_server_;
    delete pg_;
  }
  static absl::Status StartServers() {
    NDX_RETURN_IF_ERROR(pg_->Start());
    NDX_RETURN_IF_ERROR(redis_server_->Start());
    const std::string db = absl::StrCat("ndx_test_history_pgtest_", ::getpid());
    NDX_RETURN_IF_ERROR(pg_->CreateDatabase(db));
    NDX_ASSIGN_OR_RETURN(std::unique_ptr<pg::PgPool> pool,
                         pg::PgPool::Create({.conninfo = pg_->url(db),
                                             .size = 4,
                                             .connect_timeout = absl::Seconds(1),
                                             .acquire_timeout = absl::Seconds(2)}));
    NDX_RETURN_IF_ERROR(store::ApplyMigrations(*pool));
    pool_ = pool.release();
    return absl::OkStatus();
  }
  void SetUp() override { ASSERT_THAT(*setup_, IsOk()) << "servers did not start"; }

  static store::NewExecution Row(const std::string& id, const std::string& queue) {
    return store::NewExecution{.id = id,
                               .workflow_id = "wf",
                               .workflow_name = "My workflow",
                               .workspace_id = "ws-history",
                               .trigger_node_id = "n1",
                               .trigger_data_json = "{}",
                               .workflow_snapshot_json = R"({"nodes": []})",
                               .queue = queue,
                               .created_at = absl::Now()};
  }

  static inline ndx::testing::PostgresServer* pg_ = nullptr;
  static inline ndx::testing::RedisServer* redis_server_ = nullptr;
  static inline absl::Status* setup_ = nullptr;
  static inline pg::PgPool* pool_ = nullptr;
};

constexpr char kPayload[] =
    R"({"workflowId":"wf","workflow":{"nodes":[{"id":"n1","name":"Node 1","type":"set"}]}})";

TEST_F(HistoryTest, AnEndNeverWrittenIsRecordedAfterPostgresWasDownLongerThanTheCompletionTtl) {
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 4);
  store::PostgresExecutionStore pg_store(*pool_);
  store::OutboxStore history(
      pg_store, redis,
      {.key_prefix = "ndx:{outbox-history}:", .poll_interval = absl::Milliseconds(100)});
  history.StartDrainer();
  const absl::Duration completion_ttl = absl::Seconds(1);
  queue::RedisQueue q(redis,
                      {.name = "hist",
                       .completion_ttl = completion_ttl,
                       .history_pending = true,
                       .history_grace = absl::Milliseconds(500)},
                      common::RealClock());

  // Two executions, created in the history and running: one will succeed, one fail.
  const std::vector<std::string> ids = {"h-ok", "h-err"};
  for (const std::string& id : ids) {
    ASSERT_THAT(history.CreateExecution(Row(id, "hist")), IsOk());
    ASSERT_THAT(q.Enqueue({queue::NewJob{.id = id, .payload = kPayload}}), IsOk());
  }
  absl::StatusOr<queue::ClaimResult> claim = q.Claim("w", 2);
  ASSERT_THAT(claim, IsOk());
  ASSERT_THAT(claim->jobs, SizeIs(2));
  for (const queue::ClaimedJob& j : claim->jobs) {
    ASSERT_THAT(history.StartAttempt({j.id, j.epoch, j.attempt, "w", absl::Now()}), IsOk());
    ASSERT_THAT(q.Start({j.id, j.epoch, "wf", "ws-history"}, R"({"type":"started"})"), IsOk());
  }
  // The worker checkpoints node n1 of h-ok in Redis; PostgreSQL goes down, so its history write
  // of that run waits in the outbox.
  const queue::ClaimedJob& ok_job = claim->jobs[0].id == "h-ok" ? claim->jobs[0] : claim->jobs[1];
  const queue::ClaimedJob& err_job = claim->jobs[0].id == "h-ok" ? claim->jobs[1] : claim->jobs[0];
  const std::string_view completed[] = {R"({"type":"node-completed"})"};
  ASSERT_THAT(q.NodeEvent({"h-ok", ok_job.epoch, "wf", "ws-history"}, completed, "n1",
                          R"({"status":"completed","output":{"main":[[{"json":{"a":1}}]]}})"),
              IsOk());
  pg_->Stop();
  ASSERT_THAT(history.RecordNodeRun({.execution_id = "h-ok",
                                     .epoch = ok_job.epoch,
                                     .run_key = "n1",
                                     .node_id = "n1",
                                     .node_name = "Node 1",
                                     .node_type = "set",
                                     .status = store::NodeStatus::kSuccess,
                                     .attempt = 1,
                                     .output_json = R"({"main":[[{"json":{"a":1}}]]})",
                                     .finished_at = absl::Now()}),
              IsOk());
  ASSERT_GT(*history.Pending(), 0) << "PostgreSQL is down: the write is queued";
  // The completion scripts end both jobs in Redis, and then the worker is SIGKILLed: no history
  // end write, no MarkRecorded.
  ASSERT_THAT(q.Complete({queue::JobRef{"h-ok", ok_job.epoch}}), IsOk());
  ASSERT_EQ(q.Fail({"h-err", err_job.epoch}, R"({"message":"boom","code":"X"})", false)->kind,
            queue::FailOutcome::Kind::kFailed);

  // While the history refuses the write (PostgreSQL down and this outbox full), the ends stay.
  {
    store::OutboxStore full(pg_store, redis,
                            {.key_prefix = "ndx:{outbox-full}:", .max_ops = 1, .hard_max_ops = 1});
    ASSERT_THAT(full.CreateExecution(Row("filler", "hist")), IsOk());
    absl::SleepFor(absl::Milliseconds(600));  // past history_grace
    EXPECT_EQ(RecordUnrecorded(q, full), 0);
    EXPECT_THAT(*q.Unrecorded(absl::ZeroDuration(), 10), SizeIs(2));
  }

  // Longer than the completion TTL: before, the jobs expired here and nothing could finish the
  // rows; now their keys have no TTL until the end is recorded.
  absl::SleepFor(completion_ttl * 2);
  EXPECT_EQ(q.Get("h-ok")->state, queue::JobState::kCompleted);
  EXPECT_EQ(q.Get("h-err")->state, queue::JobState::kFailed);

  // Housekeeping (any process, PostgreSQL still down): the outbox accepts the ends, behind the
  // writes already queued; the ends are marked recorded, so the keys' TTL starts.
  EXPECT_EQ(RecordUnrecorded(q, history), 2);
  EXPECT_THAT(*q.Unrecorded(absl::ZeroDuration(), 10), SizeIs(0));
  EXPECT_EQ(RecordUnrecorded(q, history), 0);

  // PostgreSQL comes back; the outbox drains; the rows end with the right status.
  ASSERT_THAT(pg_->Restart(), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return history.Pending().value_or(-1) == 0; }, absl::Seconds(30)));
  EXPECT_EQ(*history.DeadLetters(), 0);
  absl::StatusOr<store::ExecutionRecord> ok_row = pg_store.GetExecution("h-ok", "", {});
  ASSERT_THAT(ok_row, IsOk());
  EXPECT_EQ(ok_row->status, store::ExecutionStatus::kSuccess);
  ASSERT_THAT(ok_row->node_runs, SizeIs(1));
  EXPECT_EQ(ok_row->node_runs[0].run.status, store::NodeStatus::kSuccess);
  absl::StatusOr<store::ExecutionRecord> err_row = pg_store.GetExecution("h-err", "", {});
  ASSERT_THAT(err_row, IsOk());
  EXPECT_EQ(err_row->status, store::ExecutionStatus::kError);
  EXPECT_THAT(err_row->error_json, HasSubstr("boom"));

  // Retention: recorded, the execution's keys now expire after the completion TTL.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return q.Get("h-ok").status().code() == absl::StatusCode::kNotFound &&
               q.Get("h-err").status().code() == absl::StatusCode::kNotFound;
      },
      completion_ttl + absl::Seconds(5)));
  history.StopDrainer();
}

TEST_F(HistoryTest, ARecordedEndIsMarkedOnceAndARepeatChangesNothing) {
  // The worker's normal path: end in Redis, end write accepted, MarkRecorded; a housekeeping pass
  // afterwards finds nothing, and RecordEnds on an execution without a history row (workflow
  // setting saveExecutionToDatabase: false) marks it recorded.
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 4);
  store::PostgresExecutionStore pg_store(*pool_);
  queue::RedisQueue q(redis,
                      {.name = "hist2",
                       .completion_ttl = absl::Seconds(60),
                       .history_pending = true,
                       .history_grace = absl::ZeroDuration()},
                      common::RealClock());
  ASSERT_THAT(pg_store.CreateExecution(Row("r-1", "hist2")), IsOk());
  ASSERT_THAT(q.Enqueue({queue::NewJob{.id = "r-1", .payload = kPayload},
                         queue::NewJob{.id = "r-none", .payload = kPayload}}),
              IsOk());
  absl::StatusOr<queue::ClaimResult> claim = q.Claim("w", 2);
  ASSERT_THAT(claim, IsOk());
  for (const queue::ClaimedJob& j : claim->jobs) {
    ASSERT_THAT(q.Complete({queue::JobRef{j.id, j.epoch}}), IsOk());
  }
  EXPECT_EQ(RecordEnds(q, pg_store, {"r-1", "r-none"}), 2);
  EXPECT_EQ(pg_store.GetExecution("r-1", "", {})->status, store::ExecutionStatus::kSuccess);
  EXPECT_THAT(*q.Unrecorded(absl::ZeroDuration(), 10), SizeIs(0));
  EXPECT_EQ(RecordUnrecorded(q, pg_store), 0);
  redis::RedisPool::Lease c = *redis.Acquire(absl::Seconds(1));
  EXPECT_GT(c->Command({"TTL", q.prefix() + "j:r-1"})->integer(), 0);
  EXPECT_GT(c->Command({"TTL", q.prefix() + "j:r-none"})->integer(), 0);
}

}  // namespace
}  // namespace ndx::service
