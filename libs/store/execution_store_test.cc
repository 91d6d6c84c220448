// Pure unit tests of ndx::store: status strings, page tokens, validation, the outbox's JSON form,
// and the InMemoryExecutionStore fake (whose contract mirrors PostgresExecutionStore; the same
// behaviours are checked against PostgreSQL in store_pgtest.cc).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/store/execution_store.h"
#include "libs/store/in_memory_execution_store.h"
#include "libs/store/store_write_json.h"
#include "tests/testing/status_matchers.h"

namespace ndx::store {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01

TEST(StoreStatus, RoundTripsEveryExecutionStatus) {
  for (ExecutionStatus s :
       {ExecutionStatus::kRunning, ExecutionStatus::kSuccess, ExecutionStatus::kError,
        ExecutionStatus::kCancelled, ExecutionStatus::kTimeout}) {
    absl::StatusOr<ExecutionStatus> parsed = ParseExecutionStatus(ToString(s));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ToString(ExecutionStatus::kSuccess), "SUCCESS");
  EXPECT_EQ(ToString(ExecutionStatus::kTimeout), "TIMEOUT");
  EXPECT_THAT(ParseExecutionStatus("success"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsTerminal(ExecutionStatus::kRunning));
  EXPECT_TRUE(IsTerminal(ExecutionStatus::kCancelled));
}

TEST(StoreStatus, RoundTripsEveryNodeStatus) {
  for (NodeStatus s : {NodeStatus::kWaiting, NodeStatus::kRunning, NodeStatus::kSuccess,
                       NodeStatus::kError, NodeStatus::kSkipped, NodeStatus::kCancelled}) {
    absl::StatusOr<NodeStatus> parsed = ParseNodeStatus(ToString(s));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ToString(NodeStatus::kSkipped), "SKIPPED");
  EXPECT_THAT(ParseNodeStatus("COMPLETED"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StorePageToken, RoundTripsAndIsBoundToFilters) {
  ListQuery q;
  q.workspace_id = "ws1";
  q.statuses = {ExecutionStatus::kError, ExecutionStatus::kSuccess};
  const PageCursor cursor{kT0 + absl::Microseconds(123), "abc|def"};
  q.page_token = EncodePageToken(cursor, q);
  EXPECT_EQ(q.page_token.find('|'), std::string::npos) << "opaque";
  absl::StatusOr<PageCursor> back = DecodePageToken(q);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->created_at, cursor.created_at);
  EXPECT_EQ(back->id, "abc|def");

  // Status order does not matter; other filters do.
  ListQuery reordered = q;
  reordered.statuses = {ExecutionStatus::kSuccess, ExecutionStatus::kError};
  EXPECT_THAT(DecodePageToken(reordered), IsOk());
  ListQuery other = q;
  other.workspace_id = "ws2";
  EXPECT_THAT(DecodePageToken(other),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("other filters")));
  // Page fields are not filters.
  ListQuery bigger = q;
  bigger.page_size = 7;
  EXPECT_THAT(DecodePageToken(bigger), IsOk());
}

TEST(StorePageToken, RejectsGarbage) {
  ListQuery q;
  for (const char* token : {"!!!", "MXxhYmM", "", "Mnx4fDF8YQ"}) {
    q.page_token = token;
    if (q.page_token.empty()) continue;
    EXPECT_THAT(DecodePageToken(q), StatusIs(absl::StatusCode::kInvalidArgument)) << token;
  }
}

TEST(StorePageSize, DefaultsAndCaps) {
  EXPECT_EQ(*EffectivePageSize(0), 50);
  EXPECT_EQ(*EffectivePageSize(7), 7);
  EXPECT_EQ(*EffectivePageSize(1000), 100);
  EXPECT_THAT(EffectivePageSize(-1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StoreValidate, RefusesMissingFieldsAndBadJson) {
  NewExecution e{.id = "x", .workflow_id = "wf", .created_at = kT0};
  EXPECT_THAT(ValidateWrite(e), IsOk());
  e.trigger_data_json = "{not json";
  EXPECT_THAT(ValidateWrite(e), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trigger")));
  e.trigger_data_json = "";
  e.mode = "sideways";
  EXPECT_THAT(ValidateWrite(e), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateWrite(ExecutionFinish{"x", 1, ExecutionStatus::kRunning, "", kT0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("terminal")));
  EXPECT_THAT(ValidateWrite(std::vector<NodeRun>{NodeRun{.execution_id = "x", .node_id = "n"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("run key")));
}

TEST(StoreWriteJson, RoundTripsEveryWrite) {
  NewExecution create{.id = "e1",
                      .workflow_id = "wf",
                      .workflow_name = "W \xc3\xa9",
                      .workspace_id = "ws",
                      .trigger_data_json = R"({"a": [1, 2.5, "x"]})",
                      .workflow_snapshot_json = "[]",
                      .queue = "default",
                      .created_at = kT0 + absl::Microseconds(7)};
  NodeRun run{.execution_id = "e1",
              .epoch = 3,
              .run_key = "n1#0",
              .node_id = "n1",
              .status = NodeStatus::kSuccess,
              .attempt = 2,
              .output_json = R"({"main":[{"json":{}}]})",
              .started_at = kT0,
              .finished_at = kNoTime};
  const std::vector<StoreWrite> writes = {
      create,
      EnqueueFailure{"e1", R"({"message":"x"})", kT0},
      AttemptStart{"e1", 3, 1, "w-1", kT0},
      std::vector<NodeRun>{run, run},
      ExecutionFinish{"e1", 3, ExecutionStatus::kTimeout, "", kT0},
  };
  for (const StoreWrite& w : writes) {
    const std::string text = OutboxOpToJson({"op-1", w});
    absl::StatusOr<OutboxOp> back = OutboxOpFromJson(text);
    ASSERT_THAT(back, IsOk()) << text;
    EXPECT_EQ(back->op_id, "op-1");
    EXPECT_EQ(OutboxOpToJson(*back), text);
    EXPECT_EQ(back->write.index(), w.index());
  }
  const auto back = OutboxOpFromJson(OutboxOpToJson({"op", create}));
  const auto& e = std::get<NewExecution>(back->write);
  EXPECT_EQ(e.trigger_data_json, create.trigger_data_json) << "JSON text kept byte for byte";
  EXPECT_EQ(e.created_at, create.created_at);
  EXPECT_EQ(e.workflow_name, create.workflow_name);
  EXPECT_THAT(OutboxOpFromJson("{}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OutboxOpFromJson("nope"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StoreOpId, IsUniqueHex) {
  const std::string a = NewOpId(), b = NewOpId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}

// ---------------------------------------------------------------------------------------------
// InMemoryExecutionStore

NewExecution Exec(const std::string& id, absl::Time at, const std::string& ws = "ws",
                  const std::string& wf = "wf") {
  return NewExecution{.id = id, .workflow_id = wf, .workspace_id = ws, .created_at = at};
}

TEST(InMemoryExecutionStore, CreateGetAndDuplicate) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("e1", kT0)), IsOk());
  EXPECT_THAT(store.CreateExecution(Exec("e1", kT0)), StatusIs(absl::StatusCode::kAlreadyExists));
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("e1", "ws", {});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, ExecutionStatus::kRunning);
  EXPECT_EQ(r->created_at, kT0);
  EXPECT_THAT(store.GetExecution("e1", "other", {}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.GetExecution("nope", "", {}), StatusIs(absl::StatusCode::kNotFound));
}

TEST(InMemoryExecutionStore, RejectsStaleEpochs) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("e1", kT0)), IsOk());
  ASSERT_THAT(store.StartAttempt({"e1", 5, 1, "w1", kT0}), IsOk());
  absl::Status stale = store.StartAttempt({"e1", 4, 2, "w2", kT0});
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(IsStaleEpoch(stale));
  NodeRun run{.execution_id = "e1", .epoch = 4, .run_key = "k", .node_id = "n"};
  EXPECT_TRUE(IsStaleEpoch(store.RecordNodeRun(run)));
  run.epoch = 6;  // a newer lease raises the bar
  EXPECT_THAT(store.RecordNodeRun(run), IsOk());
  EXPECT_TRUE(IsStaleEpoch(store.FinishExecution({"e1", 5, ExecutionStatus::kSuccess, "", kT0})));
  EXPECT_THAT(store.FinishExecution({"e1", 6, ExecutionStatus::kSuccess, "", kT0}), IsOk());
  EXPECT_EQ(store.GetExecution("e1", "", {})->fencing_epoch, 6);
}

TEST(InMemoryExecutionStore, TerminalStatesAreFinal) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("e1", kT0)), IsOk());
  ASSERT_THAT(store.FinishExecution({"e1", 0, ExecutionStatus::kCancelled, "", kT0}), IsOk());
  EXPECT_THAT(store.FinishExecution({"e1", 0, ExecutionStatus::kCancelled, "", kT0}), IsOk());
  EXPECT_THAT(store.FinishExecution({"e1", 2, ExecutionStatus::kSuccess, "", kT0}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(store.GetExecution("e1", "", {})->status, ExecutionStatus::kCancelled);
  EXPECT_THAT(store.MarkEnqueueFailed({"nope", "", kT0}), StatusIs(absl::StatusCode::kNotFound));
}

TEST(InMemoryExecutionStore, NodeRunsUpsertByRunKey) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("e1", kT0)), IsOk());
  NodeRun run{.execution_id = "e1",
              .epoch = 1,
              .run_key = "a",
              .node_id = "n1",
              .node_name = "N1",
              .status = NodeStatus::kRunning,
              .started_at = kT0};
  ASSERT_THAT(store.RecordNodeRun(run), IsOk());
  run.status = NodeStatus::kSuccess;
  run.node_name = "";
  run.output_json = "[1]";
  run.finished_at = kT0 + absl::Seconds(1);
  ASSERT_THAT(store.RecordNodeRun(run), IsOk());
  ASSERT_THAT(store.RecordNodeRun(run), IsOk());
  EXPECT_THAT(store.RecordNodeRun(NodeRun{.execution_id = "zz", .run_key = "a", .node_id = "n"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<ExecutionRecord> r = store.GetExecution("e1", "", {});
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->node_runs.size(), 1u);
  EXPECT_EQ(r->node_runs[0].run.status, NodeStatus::kSuccess);
  EXPECT_EQ(r->node_runs[0].run.node_name, "N1");
  EXPECT_EQ(r->node_runs[0].run.output_json, "[1]");
  EXPECT_EQ(r->node_runs[0].id, "e1:a");
}

TEST(InMemoryExecutionStore, ListsNewestFirstWithStablePages) {
  InMemoryExecutionStore store;
  for (int i = 0; i < 25; ++i) {
    ASSERT_THAT(store.CreateExecution(Exec(absl::StrCat("e", 100 + i), kT0 + absl::Seconds(i / 2))),
                IsOk());
  }
  ListQuery q{.workspace_id = "ws", .page_size = 10};
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<ExecutionPage> p = store.ListExecutions(q);
    ASSERT_THAT(p, IsOk());
    for (const auto& e : p->executions) seen.push_back(e.id);
    // Inserting newer rows between pages does not shift the pages.
    ASSERT_THAT(store.CreateExecution(Exec(absl::StrCat("new", page), kT0 + absl::Hours(1))),
                IsOk());
    if (p->next_page_token.empty()) break;
    q.page_token = p->next_page_token;
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "e124");
  EXPECT_EQ(seen.back(), "e100");
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i - 1], seen[i]);
}

TEST(InMemoryExecutionStore, FiltersAndPrunes) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("a", kT0, "ws", "wf1")), IsOk());
  ASSERT_THAT(store.CreateExecution(Exec("b", kT0 + absl::Hours(1), "ws", "wf2")), IsOk());
  ASSERT_THAT(store.CreateExecution(Exec("c", kT0 + absl::Hours(2), "ws2", "wf1")), IsOk());
  ASSERT_THAT(store.FinishExecution({"a", 0, ExecutionStatus::kError, "", kT0}), IsOk());
  auto ids = [&](ListQuery q) {
    std::vector<std::string> out;
    absl::StatusOr<ExecutionPage> page = store.ListExecutions(q);
    EXPECT_THAT(page, IsOk());
    if (!page.ok()) return out;
    for (const auto& e : page->executions) out.push_back(e.id);
    return out;
  };
  EXPECT_THAT(ids({.workflow_id = "wf1"}), ElementsAre("c", "a"));
  EXPECT_THAT(ids({.statuses = {ExecutionStatus::kRunning}}), ElementsAre("c", "b"));
  EXPECT_THAT(ids({.created_after = kT0 + absl::Hours(1)}), ElementsAre("c", "b"));
  EXPECT_THAT(ids({.created_before = kT0 + absl::Hours(1)}), ElementsAre("a"));
  EXPECT_THAT(ids({.skip = 1}), ElementsAre("b", "a"));
  EXPECT_EQ(store.ListExecutions({.workspace_id = "ws", .count_total = true})->total, 2);

  // Only ended executions are pruned.
  absl::StatusOr<int64_t> n = PruneHistory(store, kT0 + absl::Hours(10), absl::Hours(1), 1);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store.size(), 2u);
}

TEST(InMemoryExecutionStore, DeletesOnlyEndedExecutionsOfTheWorkspace) {
  InMemoryExecutionStore store;
  ASSERT_THAT(store.CreateExecution(Exec("a", kT0, "ws", "wf1")), IsOk());
  EXPECT_THAT(store.DeleteExecution("a", "ws", false),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(store.FinishExecution({"a", 0, ExecutionStatus::kSuccess, "", kT0}), IsOk());
  EXPECT_THAT(store.DeleteExecution("a", "ws2", false), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.DeleteExecution("a", "ws", false), IsOk());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_THAT(store.DeleteExecution("a", "", false), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(store.CreateExecution(Exec("b", kT0, "ws", "wf1")), IsOk());
  EXPECT_THAT(store.DeleteExecution("b", "", /*even_if_running=*/true), IsOk());
}

TEST(InMemoryExecutionStore, InjectedFailures) {
  InMemoryExecutionStore store;
  store.FailNextWrites(absl::UnavailableError("down"), 1);
  EXPECT_THAT(store.CreateExecution(Exec("a", kT0)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store.CreateExecution(Exec("a", kT0)), IsOk());
}

}  // namespace
}  // namespace ndx::store
