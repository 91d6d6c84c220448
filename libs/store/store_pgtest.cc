// ndx::store against a real PostgreSQL (and, for the outbox, a real Redis): one server of each per
// test binary, started in SetUpTestSuite. Each test uses its own database (migration tests) or
// its own ids and workspace (the rest), so tests do not see each other's rows.
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/status_macros.h"
#include "libs/store/migrations.h"
#include "libs/store/outbox_store.h"
#include "libs/store/postgres_execution_store.h"
#include "tests/testing/child_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::store {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::ndx::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

class StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new ndx::testing::PostgresServer();
    redis_server_ = new ndx::testing::RedisServer();
    setup_ = new absl::Status(StartServers());
  }

  static void TearDownTestSuite() {
    delete store_;
    delete pool_;
    delete setup_;
    delete redis_server_;
    delete pg_;
  }

  static absl::Status StartServers() {
    NDX_RETURN_IF_ERROR(pg_->Start());
    NDX_RETURN_IF_ERROR(redis_server_->Start());
    NDX_RETURN_IF_ERROR(pg_->CreateDatabase(MainDb()));
    NDX_ASSIGN_OR_RETURN(std::unique_ptr<pg::PgPool> pool, MakePool(MainDb()));
    NDX_RETURN_IF_ERROR(ApplyMigrations(*pool));
    pool_ = pool.release();
    store_ = new PostgresExecutionStore(*pool_);
    return absl::OkStatus();
  }

  void SetUp() override { ASSERT_THAT(*setup_, IsOk()) << "servers did not start"; }

  static std::string MainDb() { return absl::StrCat("ndx_test_store_pgtest_", ::getpid()); }

  static absl::StatusOr<std::unique_ptr<pg::PgPool>> MakePool(const std::string& db, int size = 4) {
    return pg::PgPool::Create({.conninfo = pg_->url(db),
                               .size = size,
                               .connect_timeout = absl::Seconds(2),
                               .acquire_timeout = absl::Seconds(2)});
  }

  static absl::Status Exec(pg::PgPool& pool, const std::string& sql) {
    return pool.Run([&](pqxx::work& tx) {
      tx.exec(sql);
      return absl::OkStatus();
    });
  }

  static int64_t Scalar(pg::PgPool& pool, const std::string& sql) {
    absl::StatusOr<int64_t> n = pool.Transact(
        [&](pqxx::work& tx) -> absl::StatusOr<int64_t> { return tx.exec1(sql)[0].as<int64_t>(); });
    EXPECT_THAT(n, IsOk()) << sql;
    return n.ok() ? *n : -1;
  }

  // A fresh, empty database for a migration test.
  static std::unique_ptr<pg::PgPool> FreshDb(const std::string& suffix) {
    const std::string db = absl::StrCat(MainDb(), "_", suffix);
    EXPECT_THAT(pg_->CreateDatabase(db), IsOk());
    absl::StatusOr<std::unique_ptr<pg::PgPool>> pool = MakePool(db);
    EXPECT_THAT(pool, IsOk());
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  static NewExecution Exec(const std::string& id, absl::Time at, const std::string& ws,
                           const std::string& wf = "wf") {
    return NewExecution{.id = id,
                        .workflow_id = wf,
                        .workflow_name = "My workflow",
                        .workspace_id = ws,
                        .trigger_node_id = "t",
                        .trigger_data_json = R"({"source": "manual"})",
                        .workflow_snapshot_json = R"({"nodes": []})",
                        .queue = "default",
                        .created_at = at};
  }

  static NodeRun Node(const std::string& exec, int64_t epoch, const std::string& key,
                      NodeStatus status, absl::Time at) {
    return NodeRun{
        .execution_id = exec,
        .epoch = epoch,
        .run_key = key,
        .node_id = "node-" + key,
        .node_name = "Node " + key,
        .node_type = "set",
        .status = status,
        .attempt = 1,
        .output_json = status == NodeStatus::kSuccess ? R"({"main":[{"json":{"a":1}}]})" : "",
        .started_at = at,
        .finished_at = status == NodeStatus::kRunning ? kNoTime : at};
  }

  static inline ndx::testing::PostgresServer* pg_ = nullptr;
  static inline ndx::testing::RedisServer* redis_server_ = nullptr;
  static inline absl::Status* setup_ = nullptr;
  static inline pg::PgPool* pool_ = nullptr;
  static inline PostgresExecutionStore* store_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Migrations

TEST_F(StoreTest, MigrationsFromEmptyAndRerun) {
  std::unique_ptr<pg::PgPool> pool = FreshDb("empty");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(*SchemaVersion(*pool), 0);
  ASSERT_THAT(ApplyMigrations(*pool), IsOk());
  const int latest = Migrations().back().version;
  EXPECT_EQ(*SchemaVersion(*pool), latest);
  ASSERT_THAT(ApplyMigrations(*pool), IsOk());  // re-run: nothing to do
  EXPECT_EQ(*SchemaVersion(*pool), latest);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM ndx_schema_migrations"),
            static_cast<int64_t>(Migrations().size()));
  // NodeDrop's columns and ndx's are there.
  EXPECT_EQ(Scalar(*pool,
                   "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                   "'executions' AND column_name IN ('workflow_snapshot', 'trigger_data', "
                   "'flow_execution_path', 'fencing_epoch', 'attempts', 'queued_at', "
                   "'claimed_at')"),
            7);
}

TEST_F(StoreTest, MigrationsKeepAnExistingNodeDropDatabase) {
  std::unique_ptr<pg::PgPool> pool = FreshDb("nodedrop");
  ASSERT_NE(pool, nullptr);
  // NodeDrop's own tables (a subset of the columns is enough), with a row of NodeDrop's.
  ASSERT_THAT(Exec(*pool,
                   "CREATE TABLE executions (id text PRIMARY KEY NOT NULL, workflow_id text NOT "
                   "NULL, workspace_id text, status text DEFAULT 'RUNNING' NOT NULL, started_at "
                   "timestamp DEFAULT now() NOT NULL, finished_at timestamp, trigger_data json, "
                   "error json, workflow_snapshot json, created_at timestamp DEFAULT now() NOT "
                   "NULL, updated_at timestamp DEFAULT now() NOT NULL);"
                   "CREATE TABLE node_executions (id text PRIMARY KEY NOT NULL, node_id text NOT "
                   "NULL, execution_id text NOT NULL, status text DEFAULT 'WAITING' NOT NULL, "
                   "input_data json, output_data json, error json, started_at timestamp, "
                   "finished_at timestamp, created_at timestamp DEFAULT now() NOT NULL, "
                   "updated_at timestamp DEFAULT now() NOT NULL);"
                   "INSERT INTO executions (id, workflow_id, status) VALUES ('cm1', 'wf', "
                   "'SUCCESS');"
                   "INSERT INTO node_executions (id, node_id, execution_id, status) VALUES "
                   "('cn1', 'n1', 'cm1', 'COMPLETED')"),
              IsOk());
  ASSERT_THAT(ApplyMigrations(*pool), IsOk());
  PostgresExecutionStore store(*pool);
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("cm1", "", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kSuccess);
  ASSERT_EQ(r->node_runs.size(), 1u);
  EXPECT_EQ(r->node_runs[0].run.status, NodeStatus::kSuccess);  // NodeDrop's COMPLETED
  EXPECT_EQ(r->node_runs[0].run.run_key, "cn1");
  // And ndx writes work on it.
  EXPECT_THAT(store.CreateExecution(Exec("ndx1", kT0, "ws")), IsOk());
}

TEST_F(StoreTest, ConcurrentMigratorsApplyEachMigrationOnce) {
  std::unique_ptr<pg::PgPool> admin = FreshDb("concurrent");
  ASSERT_NE(admin, nullptr);
  const std::string db = absl::StrCat(MainDb(), "_concurrent");
  constexpr int kMigrators = 4;
  std::vector<std::unique_ptr<pg::PgPool>> pools;
  for (int i = 0; i < kMigrators; ++i) {
    absl::StatusOr<std::unique_ptr<pg::PgPool>> p = MakePool(db, 1);
    ASSERT_THAT(p, IsOk());
    pools.push_back(*std::move(p));
  }
  std::atomic<int> ready{0};
  std::vector<absl::Status> results(kMigrators);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMigrators; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      WaitUntil([&] { return ready.load() == kMigrators; }, absl::Seconds(5), absl::ZeroDuration());
      results[i] = ApplyMigrations(*pools[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
  EXPECT_EQ(Scalar(*admin, "SELECT count(*) FROM ndx_schema_migrations"),
            static_cast<int64_t>(Migrations().size()));
  EXPECT_EQ(*SchemaVersion(*admin), Migrations().back().version);
}

// ---------------------------------------------------------------------------------------------
// Write path

TEST_F(StoreTest, WritePathAndGet) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.CreateExecution(Exec("w1", kT0, "ws-write")), IsOk());
  EXPECT_THAT(store.CreateExecution(Exec("w1", kT0, "ws-write")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_THAT(store.StartAttempt({"w1", 3, 1, "worker-a", kT0 + absl::Milliseconds(5)}), IsOk());
  ASSERT_THAT(store.RecordNodeRun(Node("w1", 3, "b", NodeStatus::kRunning, kT0 + absl::Seconds(2))),
              IsOk());
  ASSERT_THAT(
      store.RecordNodeRuns({Node("w1", 3, "a", NodeStatus::kSuccess, kT0 + absl::Seconds(1)),
                            Node("w1", 3, "b", NodeStatus::kSuccess, kT0 + absl::Seconds(2))}),
      IsOk());
  ASSERT_THAT(
      store.FinishExecution({"w1", 3, ExecutionStatus::kSuccess, "", kT0 + absl::Seconds(3)}),
      IsOk());
  // Repeats are harmless; a different end is refused and changes nothing.
  EXPECT_THAT(store.FinishExecution({"w1", 3, ExecutionStatus::kSuccess, "", kT0}), IsOk());
  EXPECT_THAT(store.FinishExecution({"w1", 0, ExecutionStatus::kCancelled, "", kT0}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SUCCESS")));
  EXPECT_THAT(store.FinishExecution({"zz", 0, ExecutionStatus::kCancelled, "", kT0}),
              StatusIs(absl::StatusCode::kNotFound));

  absl::StatusOr<ExecutionRecord> r = store.GetExecution("w1", "ws-write", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kSuccess);
  EXPECT_EQ(r->workflow_id, "wf");
  EXPECT_EQ(r->workflow_name, "My workflow");
  EXPECT_EQ(r->trigger_data_json, R"({"source": "manual"})");
  EXPECT_EQ(r->workflow_snapshot_json, R"({"nodes": []})");
  EXPECT_EQ(r->created_at, kT0);
  EXPECT_EQ(r->started_at, kT0);
  EXPECT_EQ(r->queued_at, kT0);
  EXPECT_EQ(r->claimed_at, kT0 + absl::Milliseconds(5));
  EXPECT_EQ(r->finished_at, kT0 + absl::Seconds(3));
  EXPECT_EQ(r->fencing_epoch, 3);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(r->worker_id, "worker-a");
  EXPECT_EQ(r->queue, "default");
  EXPECT_EQ(r->mode, "queue");
  ASSERT_EQ(r->node_runs.size(), 2u);
  EXPECT_EQ(r->node_runs[0].run.run_key, "a");  // in start order
  EXPECT_EQ(r->node_runs[1].run.run_key, "b");
  EXPECT_EQ(r->node_runs[1].run.status, NodeStatus::kSuccess);
  EXPECT_EQ(r->node_runs[1].run.node_name, "Node b");
  EXPECT_EQ(r->node_runs[1].id, "w1:b");
  EXPECT_EQ(r->node_runs[1].run.output_json, R"({"main":[{"json":{"a":1}}]})");

  absl::StatusOr<ExecutionRecord> basic =
      store.GetExecution("w1", "", {.include_node_outputs = false, .include_snapshot = false});
  ASSERT_THAT(basic, IsOk());
  EXPECT_EQ(basic->workflow_snapshot_json, "");
  EXPECT_EQ(basic->node_runs[1].run.output_json, "");
  EXPECT_THAT(store.GetExecution("w1", "another-ws", {}), StatusIs(absl::StatusCode::kNotFound));

  // Node rows of a missing execution are refused.
  EXPECT_THAT(store.RecordNodeRun(Node("missing", 1, "a", NodeStatus::kRunning, kT0)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(StoreTest, EnqueueFailureLeavesNoRunningRow) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.CreateExecution(Exec("q1", kT0, "ws-enqueue")), IsOk());
  ASSERT_THAT(store.MarkEnqueueFailed({"q1", "", kT0 + absl::Seconds(1)}), IsOk());
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("q1", "", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kError);
  EXPECT_THAT(r->error_json, HasSubstr("ENQUEUE_FAILED"));
  EXPECT_EQ(r->finished_at, kT0 + absl::Seconds(1));
}

TEST_F(StoreTest, StaleEpochRejectedByTheDatabase) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.CreateExecution(Exec("s1", kT0, "ws-stale")), IsOk());
  ASSERT_THAT(store.StartAttempt({"s1", 7, 1, "old", kT0}), IsOk());
  ASSERT_THAT(store.RecordNodeRun(Node("s1", 7, "a", NodeStatus::kRunning, kT0)), IsOk());
  // The lease moved on: a node write with epoch 8 raises the bar.
  ASSERT_THAT(store.RecordNodeRun(Node("s1", 8, "b", NodeStatus::kRunning, kT0)), IsOk());
  EXPECT_EQ(store.GetExecution("s1", "", {})->fencing_epoch, 8);

  absl::Status s = store.RecordNodeRun(Node("s1", 7, "a", NodeStatus::kSuccess, kT0));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, HasSubstr("stale lease epoch 7")));
  EXPECT_TRUE(IsStaleEpoch(s)) << s;
  EXPECT_TRUE(IsStaleEpoch(store.StartAttempt({"s1", 7, 2, "old", kT0})));
  EXPECT_TRUE(IsStaleEpoch(store.FinishExecution({"s1", 7, ExecutionStatus::kSuccess, "", kT0})));
  // The rejected writes changed nothing.
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("s1", "", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kRunning);
  EXPECT_EQ(r->node_runs[0].run.status, NodeStatus::kRunning);

  // The database itself refuses, whoever writes: plain SQL too.
  absl::Status raw = Exec(*pool_, "UPDATE executions SET fencing_epoch = 2 WHERE id = 's1'");
  EXPECT_EQ(pg::SqlStateOf(raw), "NDX01") << raw;
  // And after the end, a stale finisher is still told it is stale.
  ASSERT_THAT(store.FinishExecution({"s1", 8, ExecutionStatus::kError, R"({"message":"x"})", kT0}),
              IsOk());
  EXPECT_TRUE(IsStaleEpoch(store.FinishExecution({"s1", 7, ExecutionStatus::kError, "", kT0})));
}

TEST_F(StoreTest, ConcurrentTakeoverNeverLetsAStaleWriteThrough) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.CreateExecution(Exec("race", kT0, "ws-race")), IsOk());
  // Epoch e writes node rows while epoch e+1 takes over; after the takeover returned, no write
  // of epoch e may succeed.
  for (int64_t epoch = 1; epoch <= 20; epoch += 2) {
    std::atomic<bool> taken_over{false};
    std::atomic<int> late_successes{0};
    std::thread old_holder([&] {
      for (int i = 0; i < 20; ++i) {
        const bool after = taken_over.load();
        absl::Status s = store.RecordNodeRun(
            Node("race", epoch, absl::StrCat("k", i % 3), NodeStatus::kRunning, kT0));
        if (after && s.ok()) ++late_successes;
        if (!s.ok()) {
          EXPECT_TRUE(IsStaleEpoch(s)) << s;
        }
      }
    });
    ASSERT_THAT(store.StartAttempt({"race", epoch + 1, 1, "new", kT0}), IsOk());
    taken_over = true;
    old_holder.join();
    EXPECT_EQ(late_successes.load(), 0) << "epoch " << epoch;
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

TEST_F(StoreTest, PaginationIsStableUnderInserts) {
  PostgresExecutionStore& store = *store_;
  const std::string ws = "ws-pages";
  constexpr int kRows = 230;
  for (int i = 0; i < kRows; ++i) {
    // Many rows share a timestamp, so the id breaks ties.
    ASSERT_THAT(store.CreateExecution(Exec(absl::StrCat("p", 1000 + i), kT0 + absl::Seconds(i / 7),
                                           ws, i % 2 ? "wf-odd" : "wf-even")),
                IsOk());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread writer([&] {
    // New executions arrive while a client pages: they are newer, so before the cursor.
    while (!stop) {
      const int i = inserted++;
      EXPECT_THAT(store.CreateExecution(
                      Exec(absl::StrCat("new", i), kT0 + absl::Hours(1) + absl::Seconds(i), ws)),
                  IsOk());
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  ListQuery q{.workspace_id = ws, .created_before = kT0 + absl::Minutes(30), .page_size = 17};
  std::vector<std::string> seen;
  for (int page = 0; page < 100; ++page) {
    absl::StatusOr<ExecutionPage> p = store.ListExecutions(q);
    ASSERT_THAT(p, IsOk());
    for (const ExecutionRecord& e : p->executions) seen.push_back(e.id);
    if (p->next_page_token.empty()) break;
    q.page_token = p->next_page_token;
  }
  stop = true;
  writer.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kRows));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "duplicates";
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i - 1], seen[i]) << "newest first";

  // Without the time bound the inserted rows come first; filters; totals; bad tokens.
  absl::StatusOr<ExecutionPage> first = store.ListExecutions({.workspace_id = ws, .page_size = 3});
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->executions[0].id.substr(0, 3), "new");
  absl::StatusOr<ExecutionPage> odd = store.ListExecutions(
      {.workspace_id = ws, .workflow_id = "wf-odd", .page_size = 100, .count_total = true});
  ASSERT_THAT(odd, IsOk());
  EXPECT_EQ(odd->total, kRows / 2);
  EXPECT_EQ(odd->executions.size(), 100u);
  EXPECT_FALSE(odd->next_page_token.empty());
  ListQuery other{.workspace_id = "ws-other", .page_token = odd->next_page_token};
  EXPECT_THAT(store.ListExecutions(other), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<ExecutionPage> none =
      store.ListExecutions({.workspace_id = ws, .statuses = {ExecutionStatus::kTimeout}});
  ASSERT_THAT(none, IsOk());
  EXPECT_TRUE(none->executions.empty());
  EXPECT_TRUE(none->next_page_token.empty());
  absl::StatusOr<ExecutionPage> skipped = store.ListExecutions(
      {.workspace_id = ws, .created_before = kT0 + absl::Minutes(30), .page_size = 2, .skip = 1});
  ASSERT_THAT(skipped, IsOk());
  EXPECT_THAT(std::vector<std::string>({skipped->executions[0].id, skipped->executions[1].id}),
              ElementsAre(seen[1], seen[2]));
}

TEST_F(StoreTest, PruneDeletesOldEndedExecutionsInBatches) {
  PostgresExecutionStore& store = *store_;
  const absl::Time old = kT0 - absl::Hours(24 * 400);
  for (int i = 0; i < 7; ++i) {
    const std::string id = absl::StrCat("old", i);
    ASSERT_THAT(store.CreateExecution(Exec(id, old + absl::Seconds(i), "ws-prune")), IsOk());
    ASSERT_THAT(store.RecordNodeRun(Node(id, 1, "a", NodeStatus::kSuccess, old)), IsOk());
    if (i != 3) {  // one stays RUNNING: never pruned
      ASSERT_THAT(store.FinishExecution({id, 1, ExecutionStatus::kSuccess, "", old}), IsOk());
    }
  }
  absl::StatusOr<int64_t> n = PruneHistory(store, kT0, absl::Hours(24 * 30), /*batch_size=*/4);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 6);
  EXPECT_EQ(Scalar(*pool_, "SELECT count(*) FROM executions WHERE id LIKE 'old%'"), 1);
  EXPECT_EQ(Scalar(*pool_, "SELECT count(*) FROM node_executions WHERE execution_id LIKE 'old%'"),
            1);
}

TEST_F(StoreTest, DeleteRemovesAnEndedExecutionWithItsNodesAndScopesByWorkspace) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.CreateExecution(Exec("del1", kT0, "ws-del")), IsOk());
  ASSERT_THAT(store.RecordNodeRun(Node("del1", 1, "a", NodeStatus::kRunning, kT0)), IsOk());
  // Still RUNNING: refused, unless the caller knows the row only lags behind.
  EXPECT_THAT(store.DeleteExecution("del1", "ws-del", false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cancel it")));
  ASSERT_THAT(store.FinishExecution({"del1", 1, ExecutionStatus::kError, "", kT0}), IsOk());
  // Another workspace's execution behaves as if it did not exist.
  EXPECT_THAT(store.DeleteExecution("del1", "ws-other", false),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(store.DeleteExecution("del1", "ws-del", false), IsOk());
  EXPECT_THAT(store.GetExecution("del1", "", {}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Scalar(*pool_, "SELECT count(*) FROM node_executions WHERE execution_id = 'del1'"), 0);
  EXPECT_THAT(store.DeleteExecution("del1", "", false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.DeleteExecution("", "", false), StatusIs(absl::StatusCode::kInvalidArgument));

  ASSERT_THAT(store.CreateExecution(Exec("del2", kT0, "ws-del")), IsOk());
  EXPECT_THAT(store.DeleteExecution("del2", "", /*even_if_running=*/true), IsOk());
  EXPECT_THAT(store.GetExecution("del2", "", {}), StatusIs(absl::StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------------------------
// Outbox

TEST_F(StoreTest, ApplyOnceAppliesAnOpExactlyOnce) {
  PostgresExecutionStore& store = *store_;
  ASSERT_THAT(store.ApplyOnce("op-c", Exec("o1", kT0, "ws-once")), IsOk());
  ASSERT_THAT(store.ApplyOnce("op-c", Exec("o1", kT0, "ws-once")), IsOk());  // delivered again
  NodeRun run = Node("o1", 1, "a", NodeStatus::kSuccess, kT0);
  ASSERT_THAT(store.ApplyOnce("op-n", std::vector<NodeRun>{run}), IsOk());
  ASSERT_THAT(store.RecordNodeRun(Node("o1", 1, "a", NodeStatus::kError, kT0)), IsOk());
  // Re-delivering op-n must not apply it again (it would turn the node back to SUCCESS).
  ASSERT_THAT(store.ApplyOnce("op-n", std::vector<NodeRun>{run}), IsOk());
  EXPECT_EQ(store.GetExecution("o1", "", {})->node_runs[0].run.status, NodeStatus::kError);
  // A create whose direct write committed although the caller saw UNAVAILABLE.
  ASSERT_THAT(store.CreateExecution(Exec("o2", kT0, "ws-once")), IsOk());
  EXPECT_THAT(store.ApplyOnce("op-c2", Exec("o2", kT0, "ws-once")), IsOk());
  // A failed op records nothing, so it can be retried.
  EXPECT_THAT(store.ApplyOnce("op-x", ExecutionFinish{"nope", 0, ExecutionStatus::kError, "", kT0}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Scalar(*pool_, "SELECT count(*) FROM ndx_outbox_applied WHERE op_id = 'op-x'"), 0);
}

TEST_F(StoreTest, ApplyOnceAllAppliesEveryOpOrNone) {
  PostgresExecutionStore& store = *store_;
  const NodeRun run = Node("m1", 1, "a", NodeStatus::kSuccess, kT0);
  std::vector<std::pair<std::string, StoreWrite>> ops = {
      {"op-m1", Exec("m1", kT0, "ws-all")},
      {"op-m1-n", std::vector<NodeRun>{run}},
      {"op-missing", ExecutionFinish{"nope", 0, ExecutionStatus::kError, "", kT0}}};
  // One op is refused: nothing of the batch is applied or recorded.
  EXPECT_THAT(store.ApplyOnceAll(ops), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.GetExecution("m1", "", {}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Scalar(*pool_, "SELECT count(*) FROM ndx_outbox_applied WHERE op_id LIKE 'op-m1%'"), 0);
  // Without it, every op applies; delivered again, none applies twice.
  ops.pop_back();
  ops.push_back({"op-m1-f", ExecutionFinish{"m1", 1, ExecutionStatus::kSuccess, "", kT0}});
  ASSERT_THAT(store.ApplyOnceAll(ops), IsOk());
  ASSERT_THAT(store.RecordNodeRun(Node("m1", 1, "a", NodeStatus::kError, kT0)), IsOk());
  ASSERT_THAT(store.ApplyOnceAll(ops), IsOk());
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("m1", "", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kSuccess);
  ASSERT_EQ(r->node_runs.size(), 1u);
  EXPECT_EQ(r->node_runs[0].run.status, NodeStatus::kError);  // op-m1-n was not applied again
}

TEST_F(StoreTest, OutboxIsBoundedWhenPostgresIsDown) {
  // A store on a database that does not answer (closed port).
  absl::StatusOr<std::unique_ptr<pg::PgPool>> dead_pool = pg::PgPool::Create(
      {.conninfo = "postgresql://postgres@127.0.0.1:1/none", .connect_timeout = absl::Seconds(1)});
  ASSERT_THAT(dead_pool, IsOk());
  PostgresExecutionStore down(**dead_pool);
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 2);
  OutboxStore store(down, redis,
                    {.key_prefix = "ndx:{outbox-bounded}:", .max_ops = 3, .hard_max_ops = 5});
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(store.CreateExecution(Exec(absl::StrCat("b", i), kT0, "ws-bounded")), IsOk());
  }
  EXPECT_EQ(*store.Pending(), 3);
  EXPECT_THAT(store.CreateExecution(Exec("b3", kT0, "ws-bounded")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("outbox is full")));
  // Accepted executions may still record their history, up to the hard limit.
  EXPECT_THAT(store.RecordNodeRun(Node("b0", 1, "a", NodeStatus::kSuccess, kT0)), IsOk());
  EXPECT_THAT(store.FinishExecution({"b0", 1, ExecutionStatus::kSuccess, "", kT0}), IsOk());
  EXPECT_THAT(store.FinishExecution({"b1", 1, ExecutionStatus::kSuccess, "", kT0}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(*store.Pending(), 5);
  // Invalid writes are refused before anything is queued.
  EXPECT_THAT(store.CreateExecution(NewExecution{.id = "x"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The drainer cannot apply anything and keeps every op.
  EXPECT_THAT(store.DrainOnce(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(*store.Pending(), 5);
  // No delete while writes are queued: replayed later, they would fail against the missing row.
  EXPECT_THAT(store.DeleteExecution("b0", "", false),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("5 pending")));
}

TEST_F(StoreTest, OutboxDeadLettersStaleOpsAndKeepsOrder) {
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 2);
  OutboxStore store(*store_, redis, {.key_prefix = "ndx:{outbox-order}:"});
  ASSERT_THAT(store.CreateExecution(Exec("d1", kT0, "ws-dead")), IsOk());
  ASSERT_THAT(store.StartAttempt({"d1", 5, 1, "w", kT0}), IsOk());
  // Queue ops by hand, as if PostgreSQL had been down: a stale node run, then a valid finish.
  {
    absl::StatusOr<redis::RedisPool::Lease> c = redis.Acquire(absl::Seconds(1));
    ASSERT_THAT(c, IsOk());
    const std::string stale = OutboxOpToJson(
        {"op-stale", std::vector<NodeRun>{Node("d1", 4, "a", NodeStatus::kSuccess, kT0)}});
    const std::string finish =
        OutboxOpToJson({"op-fin", ExecutionFinish{"d1", 5, ExecutionStatus::kSuccess, "", kT0}});
    ASSERT_THAT((*c)->Command({"RPUSH", store.writes_key(), stale, finish}), IsOk());
  }
  // While ops are queued, new writes queue behind them instead of overtaking.
  ASSERT_THAT(store.RecordNodeRun(Node("d1", 5, "b", NodeStatus::kSuccess, kT0)), IsOk());
  EXPECT_EQ(*store.Pending(), 3);
  EXPECT_EQ(store.GetExecution("d1", "", {})->node_runs.size(), 0u);
  absl::StatusOr<int> n = store.DrainOnce();
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(*store.Pending(), 0);
  EXPECT_EQ(*store.DeadLetters(), 1);
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("d1", "", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kSuccess);
  ASSERT_EQ(r->node_runs.size(), 1u);
  EXPECT_EQ(r->node_runs[0].run.run_key, "b");
}

// A backlog drains a batch at a time (one transaction per batch): 250 ops in two passes.
TEST_F(StoreTest, OutboxDrainsABacklogInBatches) {
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 2);
  OutboxStore store(*store_, redis, {.key_prefix = "ndx:{outbox-batch}:", .drain_batch = 200});
  {
    absl::StatusOr<redis::RedisPool::Lease> c = redis.Acquire(absl::Seconds(1));
    ASSERT_THAT(c, IsOk());
    for (int i = 0; i < 125; ++i) {
      const std::string id = absl::StrCat("batch-", i);
      ASSERT_THAT(
          (*c)->Command(
              {"RPUSH", store.writes_key(),
               OutboxOpToJson({absl::StrCat("op-", id), Exec(id, kT0, "ws-batch")}),
               OutboxOpToJson({absl::StrCat("op-", id, "-f"),
                               ExecutionFinish{id, 0, ExecutionStatus::kSuccess, "", kT0}})}),
          IsOk());
    }
  }
  absl::StatusOr<int> n = store.DrainOnce();
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 200);
  n = store.DrainOnce();
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 50);
  EXPECT_EQ(*store.Pending(), 0);
  EXPECT_EQ(*store.DeadLetters(), 0);
  EXPECT_EQ(Scalar(*pool_,
                   "SELECT count(*) FROM executions WHERE workspace_id = 'ws-batch' AND status = "
                   "'SUCCESS'"),
            125);
}

// The issue's acceptance test: PostgreSQL stopped for 20 s during 200 executions; every row
// converges once it is back (count and final states), and nothing is applied twice.
TEST_F(StoreTest, OutboxConvergesAfterPostgresOutage) {
  absl::StatusOr<std::unique_ptr<pg::PgPool>> pool_or = MakePool(MainDb(), 4);
  ASSERT_THAT(pool_or, IsOk());
  std::unique_ptr<pg::PgPool> pool = *std::move(pool_or);
  PostgresExecutionStore pg_store(*pool);
  redis::RedisPool redis(*redis::ParseRedisUrl(redis_server_->url()), 8);
  OutboxStore store(
      pg_store, redis,
      {.key_prefix = "ndx:{outbox-outage}:", .poll_interval = absl::Milliseconds(100)});
  store.StartDrainer();

  constexpr int kExecutions = 200;
  constexpr int kNodes = 10;
  const std::string ws = "ws-outage";
  auto final_status = [](int i) {
    switch (i % 4) {
      case 0:
        return ExecutionStatus::kError;
      case 1:
        return ExecutionStatus::kCancelled;
      default:
        return ExecutionStatus::kSuccess;
    }
  };
  std::atomic<int> started{0};
  std::atomic<int> failures{0};
  // Two "workers", each running executions one after another, about 8 per second in total, so
  // the 200 executions span the outage.
  auto worker = [&](int first) {
    for (int i = first; i < kExecutions; i += 2) {
      const std::string id = absl::StrCat("out-", 1000 + i);
      const absl::Time t = kT0 + absl::Seconds(i);
      auto check = [&](absl::Status s) {
        if (!s.ok()) {
          ++failures;
          ADD_FAILURE() << id << ": " << s;
        }
      };
      check(store.CreateExecution(Exec(id, t, ws)));
      check(store.StartAttempt({id, 1, 1, "w", t}));
      for (int n = 0; n < kNodes; ++n) {
        const std::string key = absl::StrCat("n", n);
        check(store.RecordNodeRun(Node(id, 1, key, NodeStatus::kRunning, t)));
        check(store.RecordNodeRun(Node(id, 1, key, NodeStatus::kSuccess, t)));
      }
      check(store.FinishExecution({id, 1, final_status(i), "", t + absl::Seconds(1)}));
      ++started;
      absl::SleepFor(absl::Milliseconds(220));
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  ASSERT_TRUE(WaitUntil([&] { return started.load() >= 20; }, absl::Seconds(30)));
  pg_->Stop();
  const absl::Time stopped = absl::Now();
  absl::SleepFor(absl::Seconds(20));
  const int during = started.load();
  absl::StatusOr<int64_t> queued = store.Pending();
  ASSERT_THAT(pg_->Restart(), IsOk());
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(queued, IsOk());
  EXPECT_GT(*queued, 100) << "writes were queued during the outage";
  std::cout << "outage " << absl::FormatDuration(absl::Now() - stopped) << ", " << during - 20
            << "+ executions ran during it, " << *queued
            << " writes queued when PostgreSQL came back\n";

  ASSERT_TRUE(WaitUntil([&] { return store.Pending().value_or(-1) == 0; }, absl::Seconds(60)));
  store.StopDrainer();
  EXPECT_EQ(*store.DeadLetters(), 0);
  EXPECT_EQ(Scalar(*pool,
                   absl::StrCat("SELECT count(*) FROM executions WHERE workspace_id = '", ws, "'")),
            kExecutions);
  EXPECT_EQ(Scalar(*pool,
                   "SELECT count(*) FROM node_executions WHERE execution_id LIKE 'out-%' "
                   "AND status = 'SUCCESS'"),
            kExecutions * kNodes);
  for (int i = 0; i < kExecutions; ++i) {
    absl::StatusOr<ExecutionRecord> r =
        pg_store.GetExecution(absl::StrCat("out-", 1000 + i), ws, {.include_node_runs = false});
    ASSERT_THAT(r, IsOk()) << i;
    EXPECT_EQ(r->status, final_status(i)) << r->id;
    EXPECT_EQ(r->finished_at, kT0 + absl::Seconds(i + 1)) << r->id;
    EXPECT_EQ(r->attempts, 1);
  }
}

}  // namespace
}  // namespace ndx::store
