// Engine unit tests: scheduling edge cases the corpus does not show (retries, timeouts,
// cancellation, observer errors, suspension and resume of waits, checkpoint handling).
#include "libs/engine/engine.h"

#include <map>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/engine_testing.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "tests/testing/status_matchers.h"

namespace ndx::engine {
namespace {

using ::ndx::engine::testing::RecordingObserver;
using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// "scripted": fails its first `failTimes` attempts (per run key) with `code`, then passes its
// input through.
class ScriptedNode final : public NodeType {
 public:
  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    const int calls = ++calls_[ctx.run_key()];
    const Json& p = ctx.node().parameters;
    if (calls <= p.value("failTimes", 0)) {
      return absl::Status(static_cast<absl::StatusCode>(p.value("code", 14)), "scripted failure");
    }
    return NodeResult::Main(ctx.items());
  }
  mutable std::map<std::string, int> calls_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterBuiltinNodes(registry_);
    auto scripted = std::make_unique<ScriptedNode>();
    scripted_ = scripted.get();
    registry_.Register("scripted", std::move(scripted));
  }

  // nodes: [{id, type, parameters?, settings?}], edges: {from, to, output?}.
  Workflow Parse(Json nodes, std::vector<std::tuple<std::string, std::string, std::string>> edges) {
    Json conns = Json::array();
    int i = 0;
    for (auto& [from, to, out] : edges) {
      conns.push_back({{"id", "c" + std::to_string(++i)},
                       {"sourceNodeId", from},
                       {"sourceOutput", out},
                       {"targetNodeId", to}});
    }
    absl::StatusOr<Workflow> wf =
        ParseWorkflow({{"nodes", nodes}, {"connections", conns}}, registry_);
    EXPECT_THAT(wf, IsOk());
    return *std::move(wf);
  }

  RunRequest Request(const Workflow& wf) {
    RunRequest req;
    req.workflow = &wf;
    req.execution = {.execution_id = "e1", .workflow_id = "w1"};
    req.clock = &clock_;
    return req;
  }

  static Json N(std::string id, std::string type, Json params = Json::object(),
                Json settings = Json::object()) {
    return {
        {"id", id}, {"name", id}, {"type", type}, {"parameters", params}, {"settings", settings}};
  }

  NodeRegistry registry_;
  ScriptedNode* scripted_ = nullptr;
  common::FakeClock clock_;
};

TEST_F(EngineTest, RetriesTransientFailuresThenSucceeds) {
  Workflow wf = Parse(
      {N("t", "manual-trigger"), N("s", "scripted", {{"failTimes", 2}},
                                   {{"retryOnFail", true}, {"maxRetries", 3}, {"retryDelay", 1}})},
      {{"t", "s", "main"}});
  RecordingObserver obs;
  RunResult r = Engine().Run(Request(wf), obs);
  EXPECT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  EXPECT_THAT(obs.events, ElementsAre("started t", "completed t", "started s", "retrying s 2",
                                      "retrying s 3", "completed s"));
}

TEST_F(EngineTest, PermanentFailureIsNotRetried) {
  Workflow wf = Parse({N("t", "manual-trigger"), N("s", "scripted", {{"failTimes", 1}, {"code", 9}},
                                                   {{"retryOnFail", true}, {"retryDelay", 1}})},
                      {{"t", "s", "main"}});
  RecordingObserver obs;
  RunResult r = Engine().Run(Request(wf), obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_FALSE(r.transient);
  EXPECT_EQ(r.failed_node_id, "s");
  EXPECT_EQ(r.failed_run_key, "s");
  EXPECT_THAT(obs.events,
              ElementsAre("started t", "completed t", "started s", "failed s FAILED_PRECONDITION"));
  ASSERT_EQ(obs.failures.size(), 1u);
  EXPECT_EQ(obs.failures[0], Json({{"message", "scripted failure"},
                                   {"code", "FAILED_PRECONDITION"},
                                   {"nodeId", "s"},
                                   {"nodeName", "s"},
                                   {"nodeType", "scripted"},
                                   {"transient", false}}));
}

TEST_F(EngineTest, ContinueOnFailAfterRetriesGivesGenericErrorItem) {
  Workflow wf = Parse(
      {N("t", "manual-trigger"),
       N("s", "scripted", {{"failTimes", 5}},
         {{"retryOnFail", true}, {"maxRetries", 1}, {"retryDelay", 1}, {"continueOnFail", true}}),
       N("n", "noop")},
      {{"t", "s", "main"}, {"s", "n", "main"}});
  RecordingObserver obs;
  RunResult r = Engine().Run(Request(wf), obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  EXPECT_EQ(r.outputs["n"]["main"][0]["json"],
            Json({{"error", "scripted failure"},
                  {"errorDetails",
                   {{"message", "scripted failure"}, {"name", "UNAVAILABLE"}, {"stack", ""}}}}));
}

TEST_F(EngineTest, CancelledBeforeStartRunsNothing) {
  Workflow wf = Parse({N("t", "manual-trigger")}, {});
  CancellationToken token;
  token.Cancel(absl::CancelledError("user"));
  RunRequest req = Request(wf);
  req.cancel = &token;
  RecordingObserver obs;
  RunResult r = Engine().Run(req, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kCancelled);
  EXPECT_THAT(r.error, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(obs.events.empty());
}

TEST_F(EngineTest, DeadlinePassedIsTimedOut) {
  Workflow wf = Parse({N("t", "manual-trigger"), N("n", "noop")}, {{"t", "n", "main"}});
  RunRequest req = Request(wf);
  req.deadline = clock_.Now();
  RecordingObserver obs;
  RunResult r = Engine().Run(req, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kTimedOut);
  EXPECT_THAT(r.error, StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(EngineTest, CancellationInterruptsAnInlineWait) {
  Workflow wf =
      Parse({N("t", "manual-trigger"), N("w", "wait", {{"duration", 3}})}, {{"t", "w", "main"}});
  CancellationToken token;
  RunRequest req = Request(wf);
  req.cancel = &token;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    token.Cancel(absl::CancelledError("user"));
  });
  RecordingObserver obs;
  const absl::Time start = absl::Now();
  RunResult r = Engine().Run(req, obs);
  canceller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(r.outcome, RunOutcome::kCancelled);
  EXPECT_EQ(r.failed_node_id, "w");
}

TEST_F(EngineTest, NodeTimeoutSettingBoundsAWait) {
  Workflow wf =
      Parse({N("t", "manual-trigger"), N("w", "wait", {{"duration", 3}}, {{"timeout", 50}})},
            {{"t", "w", "main"}});
  RunRequest req = Request(wf);
  req.clock = nullptr;  // real time: the timeout must really pass
  RecordingObserver obs;
  RunResult r = Engine().Run(req, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_THAT(r.error, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(r.transient);
}

TEST_F(EngineTest, ObserverErrorStopsAtOnce) {
  Workflow wf = Parse({N("t", "manual-trigger"), N("a", "noop"), N("b", "noop")},
                      {{"t", "a", "main"}, {"a", "b", "main"}});
  RecordingObserver obs(/*fail_at_checkpoint=*/1);
  RunResult r = Engine().Run(Request(wf), obs);
  EXPECT_EQ(r.outcome, RunOutcome::kStopped);
  EXPECT_THAT(r.error, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(obs.events, ElementsAre("started t", "completed t", "started a", "completed a"));
}

TEST_F(EngineTest, LongWaitSuspendsAndResumesWithoutRecomputingTheTime) {
  Workflow wf = Parse({N("t", "manual-trigger"), N("a", "noop"),
                       N("w", "wait", {{"duration", 1}, {"unit", "hours"}}), N("n", "noop")},
                      {{"t", "a", "main"}, {"a", "w", "main"}, {"w", "n", "main"}});
  const absl::Time resume_at = clock_.Now() + absl::Hours(1);
  RecordingObserver first;
  RunResult r1 = Engine().Run(Request(wf), first);
  ASSERT_EQ(r1.outcome, RunOutcome::kSuspended) << r1.error;
  EXPECT_EQ(r1.resume_at, resume_at);
  EXPECT_EQ(r1.failed_node_id, "w");
  EXPECT_THAT(first.events, ElementsAre("started t", "completed t", "started a", "completed a",
                                        "started w", "suspended w"));
  EXPECT_EQ(first.checkpoints["w"]["status"], "waiting");
  EXPECT_EQ(first.checkpoints["w"]["resumeAt"], "2026-01-01T01:00:00.000Z");

  // Woken too early (30 min later): suspends again until the same time.
  clock_.Advance(absl::Minutes(30));
  RunRequest again = Request(wf);
  again.checkpoints = first.checkpoints;
  RecordingObserver second;
  RunResult r2 = Engine().Run(again, second);
  ASSERT_EQ(r2.outcome, RunOutcome::kSuspended);
  EXPECT_EQ(r2.resume_at, resume_at);
  EXPECT_THAT(second.events, ElementsAre("started w", "suspended w"));

  // On time: the wait completes and the rest runs; nothing before it runs again.
  clock_.Advance(absl::Minutes(30));
  RunRequest last = Request(wf);
  last.checkpoints = first.checkpoints;
  RecordingObserver third;
  RunResult r3 = Engine().Run(last, third);
  ASSERT_EQ(r3.outcome, RunOutcome::kCompleted) << r3.error;
  EXPECT_THAT(third.events, ElementsAre("started w", "completed w", "started n", "completed n"));
  EXPECT_EQ(r3.outputs["n"]["main"][0]["json"]["triggerType"], "manual");
}

TEST_F(EngineTest, WaitInsideLoopBodySuspendsPerIteration) {
  Workflow wf =
      Parse({N("t", "manual-trigger"), N("L", "loop", {{"loopOver", "repeat"}, {"repeatTimes", 2}}),
             N("w", "wait", {{"mode", "atDateTime"}, {"dateTime", "2026-01-02T00:00:00Z"}}),
             N("n", "noop")},
            {{"t", "L", "main"}, {"L", "w", "loop"}, {"L", "n", "done"}});
  RecordingObserver first;
  RunResult r1 = Engine().Run(Request(wf), first);
  ASSERT_EQ(r1.outcome, RunOutcome::kSuspended);
  EXPECT_EQ(r1.failed_run_key, "w@L:0");
  clock_.Advance(absl::Hours(25));
  RunRequest resume = Request(wf);
  resume.checkpoints = first.checkpoints;
  RecordingObserver second;
  RunResult r2 = Engine().Run(resume, second);
  ASSERT_EQ(r2.outcome, RunOutcome::kCompleted) << r2.error;
  EXPECT_THAT(second.events,
              ElementsAre("started w@L:0", "completed w@L:0", "started L#1", "completed L#1",
                          "started w@L:1", "completed w@L:1", "started L#2", "completed L#2",
                          "started n", "completed n"));
}

TEST_F(EngineTest, SkipCheckpointsAreNotReportedAgain) {
  Workflow wf =
      Parse({N("t", "manual-trigger"),
             N("if", "ifElse", {{"condition", {{"key", "a.b"}, {"expression", "isNotEmpty"}}}}),
             N("x", "noop"), N("y", "noop")},
            {{"t", "if", "main"}, {"if", "x", "true"}, {"if", "y", "false"}});
  RecordingObserver first;
  RunResult r1 = Engine().Run(Request(wf), first);
  ASSERT_EQ(r1.outcome, RunOutcome::kCompleted);
  EXPECT_THAT(first.events, ElementsAre("started t", "completed t", "started if", "completed if",
                                        "skipped x", "started y", "completed y"));
  EXPECT_EQ(first.active_connections["if"], Json::parse(R"([{"id":"c3","sourceNodeId":"if",
      "targetNodeId":"y","sourceOutput":"false"}])"));
  RunRequest again = Request(wf);
  again.checkpoints = first.checkpoints;
  RecordingObserver second;
  RunResult r2 = Engine().Run(again, second);
  EXPECT_EQ(r2.outcome, RunOutcome::kCompleted);
  EXPECT_TRUE(second.events.empty());
  EXPECT_EQ(r2.outputs, r1.outputs);
}

TEST_F(EngineTest, MalformedCheckpointFailsPermanently) {
  Workflow wf = Parse({N("t", "manual-trigger")}, {});
  RunRequest req = Request(wf);
  req.checkpoints["t"] = {{"status", "completed"}};
  RecordingObserver obs;
  RunResult r = Engine().Run(req, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_THAT(r.error, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("\"t\"")));
}

TEST_F(EngineTest, BadTriggerRequests) {
  Json disabled = N("t2", "manual-trigger");
  disabled["disabled"] = true;
  Workflow wf = Parse({N("t", "manual-trigger"), disabled}, {});
  RunRequest req = Request(wf);
  req.trigger_node_id = "nope";
  RecordingObserver obs;
  EXPECT_THAT(Engine().Run(req, obs).error,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not exist")));
  req.trigger_node_id = "t2";
  EXPECT_THAT(Engine().Run(req, obs).error,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("disabled")));
  Workflow none = Parse({N("n", "noop")}, {});
  RunRequest req2 = Request(none);
  EXPECT_THAT(Engine().Run(req2, obs).error,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no trigger")));
}

TEST_F(EngineTest, CodeAndJsExpressionsWithoutSandboxFailClearly) {
  Workflow wf = Parse({N("t", "manual-trigger"), N("c", "code", {{"code", "return items;"}})},
                      {{"t", "c", "main"}});
  RecordingObserver obs;
  RunResult r = Engine().Run(Request(wf), obs);
  EXPECT_THAT(r.error,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no JavaScript engine")));
  Workflow wf2 = Parse(
      {N("t", "manual-trigger"),
       N("s", "set", {{"values", {{{"keyValue", {{"key", "a"}, {"value", "{{ 1 + 1 }}"}}}}}}})},
      {{"t", "s", "main"}});
  RunResult r2 = Engine().Run(Request(wf2), obs);
  EXPECT_THAT(r2.error, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr("expression '{{ 1 + 1 }}' failed")));
  EXPECT_THAT(std::string(r2.error.message()), HasSubstr("node \"s\" (s)"));
}

TEST_F(EngineTest, ExecutionDeadlineHelper) {
  Json wfjson = {{"nodes", {N("t", "manual-trigger")}},
                 {"settings", {{"executionTimeout", 60000}}}};
  absl::StatusOr<Workflow> wf = ParseWorkflow(wfjson, registry_);
  ASSERT_THAT(wf, IsOk());
  const absl::Time start = absl::FromUnixSeconds(100);
  EXPECT_EQ(ExecutionDeadline(*wf, start, absl::Minutes(5)), start + absl::Minutes(1));
  EXPECT_EQ(ExecutionDeadline(*wf, start, absl::Seconds(10)), start + absl::Seconds(10));
}

}  // namespace
}  // namespace ndx::engine
