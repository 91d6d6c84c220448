// ParseWorkflow: validation messages and the precomputed model.
#include "libs/engine/workflow.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/value_util.h"
#include "tests/testing/status_matchers.h"

namespace ndx::engine {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class WorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override { RegisterBuiltinNodes(registry_); }
  absl::StatusOr<Workflow> Parse(const char* json) {
    return ParseWorkflow(Json::parse(json), registry_);
  }
  NodeRegistry registry_;
};

TEST_F(WorkflowTest, AcceptsExportWrapperAndIgnoresUiFields) {
  absl::StatusOr<Workflow> wf = Parse(R"({"version": "1.0.0", "workflow": {"id": "w",
    "nodes": [{"id": "n1", "name": "Start", "type": "manual-trigger", "disabled": false,
               "position": {"x": 1, "y": 2}, "icon": "x", "color": "#fff", "mockData": null,
               "mockDataPinned": false, "locked": false, "credentials": [],
               "settings": {"notes": "hi", "retryOnFail": true, "maxRetries": "2",
                            "retryDelay": 50, "timeout": 1000}},
              {"id": "n2", "type": "noop", "parameters": null}],
    "connections": [{"id": "c1", "sourceNodeId": "n1", "targetNodeId": "n2",
                     "algorithm": "bezier", "controlPoints": []}],
    "settings": {"executionTimeout": 1500, "timezone": "UTC"}}})");
  ASSERT_THAT(wf, IsOk());
  EXPECT_EQ(wf->id(), "w");
  ASSERT_EQ(wf->nodes().size(), 2u);
  EXPECT_EQ(wf->nodes()[1].name, "noop");  // falls back to the type
  EXPECT_TRUE(wf->nodes()[0].settings.retry_on_fail);
  EXPECT_EQ(wf->nodes()[0].settings.max_retries, 2);
  EXPECT_EQ(wf->nodes()[0].settings.retry_delay, absl::Milliseconds(50));
  EXPECT_EQ(wf->nodes()[0].settings.timeout, absl::Seconds(1));
  EXPECT_EQ(wf->nodes()[1].settings.timeout, absl::InfiniteDuration());
  EXPECT_EQ(wf->execution_timeout(), absl::Milliseconds(1500));
  EXPECT_EQ(wf->connections()[0].source_output, "main");
  EXPECT_EQ(wf->FindNodeByIdOrName("Start"), &wf->nodes()[0]);
  EXPECT_EQ(wf->FindNodeByIdOrName("n2"), &wf->nodes()[1]);
  EXPECT_EQ(wf->DefaultTrigger(), &wf->nodes()[0]);
}

TEST_F(WorkflowTest, RejectsWithClearMessages) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"nodes": {}})", "\"nodes\" must be an array"},
      {R"({"nodes": [{"type": "noop"}]})", "nodes[0]: missing \"id\""},
      {R"({"nodes": [{"id": "a"}]})", "missing \"type\""},
      {R"({"nodes": [{"id": "a", "type": "noop", "parameters": []}]})",
       "node \"noop\" (a): \"parameters\" must be an object"},
      {R"({"nodes": [{"id": "a", "type": "noop", "settings": {"maxRetries": "x"}}]})",
       "node \"noop\" (a): settings: parameter 'maxRetries' must be a number"},
      {R"({"nodes": [{"id": "t", "type": "manual-trigger"}, {"id": "u", "type": "manual-trigger"}],
           "connections": [{"id": "c", "sourceNodeId": "t", "targetNodeId": "u"}]})",
       "is a trigger and has no inputs"},
      {R"({"nodes": [{"id": "t", "type": "manual-trigger"}, {"id": "n", "type": "noop"}],
           "connections": [{"id": "c", "sourceNodeId": "t", "targetNodeId": "n",
                            "targetInput": "model"}]})",
       "target input \"model\""},
      {R"({"nodes": [{"id": "t", "type": "manual-trigger"}], "connections": {"t": {}}})",
       "flat array"},
      {R"({"nodes": [{"id": "n", "type": "http-request", "parameters": {"url": ""}}]})",
       "node \"http-request\" (n): parameter \"url\" is required"},
      {R"({"nodes": [{"id": "n", "type": "merge", "parameters": {"mode": "zip"}}]})",
       "parameter \"mode\" must be one of append"},
      {R"({"nodes": [{"id": "n", "type": "loop", "parameters": {"repeatTimes": 0}}]})",
       "repeatTimes"},
      {R"({"nodes": [{"id": "n", "type": "code", "parameters": {"language": "python"}}]})",
       "python"},
      {R"({"nodes": [{"id": "n", "type": "wait", "parameters": {"mode": "onWebhook"}}]})",
       "onWebhook"},
      {R"({"nodes": [{"id": "n", "type": "json", "parameters": {"jsonData": "{nope"}}]})",
       "not valid JSON"},
      {R"({"nodes": [{"id": "n", "type": "switch", "parameters": {"rules": "{{ $json.x }}"}}]})",
       "must be an array"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Parse(c.json), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

// JSON text nested deeper than common::kMaxJsonDepth is not JSON to the engine (json node data,
// HTTP bodies, object parameters): the parsed value would overflow the stack when it is copied or
// checkpointed, crashing the worker.
TEST_F(WorkflowTest, JsonTextNestedTooDeepIsNotJson) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(ParseJsonText(deep).is_discarded());
  EXPECT_EQ(ParseJsonText("[[1]]"), Json::parse("[[1]]"));
  EXPECT_TRUE(ParseJsonText("[1").is_discarded());
  Json wf = {{"nodes", {{{"id", "j"}, {"type", "json"}, {"parameters", {{"jsonData", deep}}}}}}};
  EXPECT_THAT(ParseWorkflow(wf, registry_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jsonData")));
}

TEST_F(WorkflowTest, LoopBodiesBackEdgesAndOrder) {
  absl::StatusOr<Workflow> wf = Parse(R"({"nodes": [
      {"id": "t", "type": "manual-trigger"}, {"id": "L", "type": "loop"},
      {"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}, {"id": "d", "type": "noop"}],
    "connections": [
      {"id": "c1", "sourceNodeId": "t", "targetNodeId": "L"},
      {"id": "c2", "sourceNodeId": "L", "sourceOutput": "loop", "targetNodeId": "a"},
      {"id": "c3", "sourceNodeId": "a", "targetNodeId": "b"},
      {"id": "c4", "sourceNodeId": "b", "targetNodeId": "L"},
      {"id": "c5", "sourceNodeId": "L", "sourceOutput": "done", "targetNodeId": "d"}]})");
  ASSERT_THAT(wf, IsOk());
  EXPECT_TRUE(wf->connections()[3].back_edge);
  EXPECT_FALSE(wf->connections()[0].back_edge);
  EXPECT_EQ(wf->nodes()[2].loop_owner, 1);
  EXPECT_EQ(wf->nodes()[3].loop_owner, 1);
  EXPECT_EQ(wf->nodes()[4].loop_owner, -1);
  EXPECT_THAT(wf->TopScope(0)->order, ElementsAre(0, 1, 4));
  EXPECT_THAT(wf->LoopBody(1).order, ElementsAre(2, 3));
}

TEST_F(WorkflowTest, DuplicateConnectionsAreMerged) {
  absl::StatusOr<Workflow> wf = Parse(R"({"nodes": [
      {"id": "t", "type": "manual-trigger"}, {"id": "n", "type": "noop"}],
    "connections": [{"id": "c1", "sourceNodeId": "t", "targetNodeId": "n"},
                    {"id": "c2", "sourceNodeId": "t", "targetNodeId": "n", "sourceOutput": "main"}]})");
  ASSERT_THAT(wf, IsOk());
  EXPECT_EQ(wf->connections().size(), 1u);
}

}  // namespace
}  // namespace ndx::engine
