// ndx-store-bench: the `ndx-bench store` figures of the history store, against a real PostgreSQL.
//
//   ndx-store-bench [--executions=2000] [--threads=4] [--rows=1000000] [--queries=400]
//
// Uses $NDX_BENCH_PG_DSN when set (a database it may write to; it creates the schema), otherwise
// starts its own PostgreSQL 15 (tests/testing/postgres_server.h: fsync off, synchronous_commit
// on). Two measurements:
//   1. writes: `executions` executions, each CreateExecution + StartAttempt + 10 node runs +
//      FinishExecution, from `threads` threads; once with one RecordNodeRun call per node (what a
//      worker does: a row per node as it completes) and once with the 10 rows batched in one call.
//      Reports executions/s and rows/s (11 rows per execution).
//   2. reads: fills `executions` to `rows` rows with one INSERT ... SELECT generate_series (10
//      workspaces, 100 workflows, 5 statuses, one row per second of creation time), ANALYZE, then
//      times `queries` ListExecutions calls (page size 50) over a mix of filters and pages 1..5
//      reached through page tokens; reports p50 / p99 / max.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/store/migrations.h"
#include "libs/store/postgres_execution_store.h"
#include "tests/testing/postgres_server.h"

namespace ndx::store {
namespace {

struct Flags {
  int executions = 2000;
  int threads = 4;
  int64_t rows = 1000000;
  int queries = 400;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto value = [&](absl::string_view name, auto* out) {
      const std::string prefix = absl::StrCat("--", name, "=");
      if (absl::StartsWith(a, prefix) && !absl::SimpleAtoi(a.substr(prefix.size()), out)) {
        std::fprintf(stderr, "bad value for %s\n", std::string(name).c_str());
        std::exit(2);
      }
    };
    value("executions", &f.executions);
    value("threads", &f.threads);
    value("rows", &f.rows);
    value("queries", &f.queries);
  }
  return f;
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

void Writes(PostgresExecutionStore& store, const Flags& f, bool batched) {
  std::atomic<int> next{0};
  const std::string run = absl::StrCat(batched ? "b" : "s", absl::ToUnixMicros(absl::Now()));
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < f.threads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < f.executions; i = next++) {
        const std::string id = absl::StrCat("bench-", run, "-", i);
        const absl::Time now = absl::Now();
        Check(store.CreateExecution({.id = id,
                                     .workflow_id = "wf-bench",
                                     .workspace_id = "ws-bench",
                                     .trigger_data_json = R"({"source":"bench"})",
                                     .workflow_snapshot_json = R"({"nodes":[]})",
                                     .queue = "default",
                                     .created_at = now}),
              "create");
        Check(store.StartAttempt({id, 1, 1, "bench-worker", now}), "start");
        std::vector<NodeRun> runs;
        for (int n = 0; n < 10; ++n) {
          runs.push_back(
              NodeRun{.execution_id = id,
                      .epoch = 1,
                      .run_key = absl::StrCat("node-", n, "#0"),
                      .node_id = absl::StrCat("node-", n),
                      .node_name = absl::StrCat("Node ", n),
                      .node_type = "set",
                      .status = NodeStatus::kSuccess,
                      .attempt = 1,
                      .output_json = R"({"main":[{"json":{"value":42,"text":"hello"}}]})",
                      .started_at = now,
                      .finished_at = now});
        }
        if (batched) {
          Check(store.RecordNodeRuns(runs), "nodes");
        } else {
          for (const NodeRun& r : runs) Check(store.RecordNodeRun(r), "node");
        }
        Check(store.FinishExecution({id, 1, ExecutionStatus::kSuccess, "", absl::Now()}), "finish");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf(
      "writes (%s node rows): %d executions in %.2f s = %.0f executions/s, %.0f rows/s "
      "(execution + 10 node rows), %.2f ms per execution per thread\n",
      batched ? "batched" : "one call per", f.executions, secs, f.executions / secs,
      f.executions * 11 / secs, secs * 1000 * f.threads / f.executions);
}

void Fill(pg::PgPool& pool, int64_t rows) {
  const absl::Time start = absl::Now();
  Check(pool.Run([&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO executions (id, workflow_id, workspace_id, status, started_at,"
        " created_at, updated_at, finished_at, trigger_data, queue, mode, attempts,"
        " fencing_epoch)"
        " SELECT 'fill-' || g, 'wf-' || (g % 100), 'ws-' || (g % 10),"
        " (ARRAY['SUCCESS','SUCCESS','SUCCESS','ERROR','CANCELLED','TIMEOUT','RUNNING'])"
        "   [1 + (g % 7)],"
        " ts, ts, ts, ts + interval '2 seconds', '{\"source\":\"fill\"}', 'default',"
        " 'queue', 1, 1"
        " FROM generate_series(1, $1::bigint) g,"
        " LATERAL (SELECT timestamp '2025-01-01' + g * interval '1 second' AS ts) t",
        rows);
    return absl::OkStatus();
  }),
        "fill");
  Check(pool.RunAutocommit([](pqxx::nontransaction& tx) {
    tx.exec("VACUUM ANALYZE executions");
    return absl::OkStatus();
  }),
        "analyze");
  std::printf(
      "filled %lld executions in %.1f s (one INSERT ... SELECT generate_series + VACUUM "
      "ANALYZE)\n",
      static_cast<long long>(rows), absl::ToDoubleSeconds(absl::Now() - start));
}

void Reads(PostgresExecutionStore& store, const Flags& f) {
  std::mt19937 rng(42);
  const absl::Time fill_start = absl::FromCivil(absl::CivilSecond(2025, 1, 1), absl::UTCTimeZone());
  std::vector<double> ms;
  std::vector<std::vector<double>> by_shape(7);
  int query = 0;
  while (query < f.queries) {
    ListQuery q;
    const int shape = rng() % 7;
    switch (shape) {
      case 0:  // everything, newest first
        break;
      case 1:
        q.workspace_id = absl::StrCat("ws-", rng() % 10);
        break;
      case 2: {  // a workflow of that workspace (the fill puts wf-N in ws-(N % 10))
        const int wf = rng() % 100;
        q.workspace_id = absl::StrCat("ws-", wf % 10);
        q.workflow_id = absl::StrCat("wf-", wf);
        break;
      }
      case 6:  // a workflow id of another workspace: matches nothing
        q.workspace_id = "ws-1";
        q.workflow_id = absl::StrCat("wf-", 10 * (rng() % 10) + 2);
        break;
      case 3:
        q.workspace_id = absl::StrCat("ws-", rng() % 10);
        q.statuses = {ExecutionStatus::kError};
        break;
      case 4:
        q.statuses = {ExecutionStatus::kRunning};
        break;
      case 5: {  // a one-day window somewhere in the table
        q.workspace_id = absl::StrCat("ws-", rng() % 10);
        q.created_after = fill_start + absl::Seconds(rng() % std::max<int64_t>(1, f.rows - 86400));
        q.created_before = q.created_after + absl::Hours(24);
        break;
      }
    }
    const int pages = 1 + rng() % 5;
    for (int p = 0; p < pages && query < f.queries; ++p, ++query) {
      const absl::Time t = absl::Now();
      absl::StatusOr<ExecutionPage> page = store.ListExecutions(q);
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
      by_shape[shape].push_back(ms.back());
      Check(page.status(), "list");
      if (page->next_page_token.empty()) break;
      q.page_token = page->next_page_token;
    }
  }
  const char* kShapes[] = {"all",
                           "workspace",
                           "workspace+workflow",
                           "workspace+status ERROR",
                           "status RUNNING",
                           "workspace+1 day",
                           "workflow of other ws"};
  for (int i = 0; i < 7; ++i) {
    std::vector<double>& v = by_shape[i];
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    std::printf("  %-24s %3zu calls: p50 %.2f ms, max %.2f ms\n", kShapes[i], v.size(),
                v[v.size() / 2], v.back());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))];
  };
  std::printf(
      "ListExecutions over %lld+ executions, page size 50, %zu calls: p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms\n",
      static_cast<long long>(f.rows), ms.size(), pct(0.5), pct(0.99), ms.back());
}

int Main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  std::unique_ptr<testing::PostgresServer> server;
  std::string dsn;
  if (const char* env = std::getenv("NDX_BENCH_PG_DSN"); env != nullptr && *env != '\0') {
    dsn = env;
  } else {
    server = std::make_unique<testing::PostgresServer>();
    Check(server->Start(), "start PostgreSQL");
    Check(server->CreateDatabase("ndx_store_bench"), "create database");
    dsn = server->url("ndx_store_bench");
  }
  absl::StatusOr<std::unique_ptr<pg::PgPool>> pool =
      pg::PgPool::Create({.conninfo = dsn, .size = f.threads + 1});
  Check(pool.status(), "pool");
  Check(ApplyMigrations(**pool), "migrations");
  PostgresExecutionStore store(**pool);
  Writes(store, f, /*batched=*/false);
  Writes(store, f, /*batched=*/true);
  Fill(**pool, f.rows);
  Reads(store, f);
  return 0;
}

}  // namespace
}  // namespace ndx::store

int main(int argc, char** argv) { return ndx::store::Main(argc, argv); }
