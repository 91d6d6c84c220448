// Unit tests of the ndx CLI: workflow files, argument errors, output formatting, and the exit
// code and message when ndx-queue cannot be reached. No server runs here.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "libs/nodedrop/workflow_json.h"
#include "tests/testing/child_process.h"
#include "tests/testing/status_matchers.h"
#include "tools/ndx/cli.h"

namespace ndx::cli {
namespace {

using ::ndx::nodedrop::LoadWorkflowFile;
using ::ndx::nodedrop::ResolveNodeId;
using ::ndx::nodedrop::WorkflowFromNodeDropJson;

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

struct Result {
  int code;
  std::string out, err;
};

Result RunNdx(std::vector<std::string> args, CliEnv env = {}) {
  std::ostringstream out, err;
  int code = RunCli(args, env, out, err);
  return {code, out.str(), err.str()};
}

TEST(WorkflowFile, ConvertsTheEditorsExport) {
  Json doc = Json::parse(R"({
    "name": "Demo", "active": false,
    "nodes": [
      {"id": "t", "name": "Start", "type": "manual-trigger", "position": {"x": 1, "y": 2},
       "parameters": {"allowCustomData": true}},
      {"id": "s", "name": "Set", "type": "set", "disabled": true,
       "parameters": {"values": [{"keyValue": {"key": "a", "value": "{{ $json.x }}"}}]},
       "settings": {"continueOnFail": true, "retryOnFail": true, "maxRetries": 2,
                    "retryDelay": 500, "timeout": 1000}}],
    "connections": [{"id": "c1", "sourceNodeId": "t", "sourceOutput": "main",
                     "targetNodeId": "s", "targetInput": "main"}],
    "settings": {"executionTimeout": 60000, "saveExecutionToDatabase": false,
                 "timezone": "Europe/Berlin"}})");
  absl::StatusOr<v1::Workflow> wf = WorkflowFromNodeDropJson(doc, "demo-file");
  ASSERT_THAT(wf, IsOk());
  EXPECT_EQ(wf->id(), "demo-file");
  EXPECT_EQ(wf->name(), "Demo");
  ASSERT_EQ(wf->nodes_size(), 2);
  EXPECT_EQ(Json::parse(wf->nodes(0).parameters_json()), Json({{"allowCustomData", true}}));
  const v1::Node& s = wf->nodes(1);
  EXPECT_TRUE(s.disabled());
  EXPECT_EQ(Json::parse(s.parameters_json())["values"][0]["keyValue"]["value"], "{{ $json.x }}");
  EXPECT_TRUE(s.settings().continue_on_fail());
  EXPECT_TRUE(s.settings().retry_on_fail());
  EXPECT_EQ(s.settings().max_retries(), 2);
  EXPECT_EQ(s.settings().retry_delay_ms(), 500);
  EXPECT_EQ(s.settings().timeout_ms(), 1000);
  ASSERT_EQ(wf->connections_size(), 1);
  EXPECT_EQ(wf->connections(0).source_node_id(), "t");
  EXPECT_EQ(wf->connections(0).target_node_id(), "s");
  EXPECT_EQ(wf->settings().execution_timeout_ms(), 60000);
  EXPECT_TRUE(wf->settings().has_save_execution_to_database());
  EXPECT_FALSE(wf->settings().save_execution_to_database());
  EXPECT_EQ(wf->settings().timezone(), "Europe/Berlin");
}

TEST(WorkflowFile, AcceptsTheWorkflowEnvelopeAndKeepsItsId) {
  Json doc = Json::parse(R"({"workflow": {"id": "wf-1", "nodes": [
      {"id": "t", "type": "manual-trigger"}], "connections": []}, "triggerData": {}})");
  absl::StatusOr<v1::Workflow> wf = WorkflowFromNodeDropJson(doc, "ignored");
  ASSERT_THAT(wf, IsOk());
  EXPECT_EQ(wf->id(), "wf-1");
  EXPECT_EQ(wf->nodes(0).parameters_json(), "");
}

TEST(WorkflowFile, NamesWhatIsWrong) {
  EXPECT_THAT(WorkflowFromNodeDropJson(Json::parse(R"({"name": "x"})"), "f"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<v1::Workflow> bad = WorkflowFromNodeDropJson(
      Json::parse(R"({"nodes": [{"id": "a", "type": "set", "parameters": [1]}]})"), "f");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("nodes[0].parameters"));
  bad = WorkflowFromNodeDropJson(
      Json::parse(R"({"nodes": [{"id": "a", "type": "set"}], "connections": {"a": {}}})"), "f");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("connections"));
  bad = WorkflowFromNodeDropJson(Json::parse(R"({"nodes": [{"id": "a"}]})"), "f");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("nodes[0].type"));
}

TEST(WorkflowFile, LoadsFilesAndNamesTheFileInErrors) {
  const std::string dir = testing::MakeTempDir("ndx-cli");
  std::ofstream(dir + "/broken.json") << "{not json";
  absl::StatusOr<v1::Workflow> wf = LoadWorkflowFile(dir + "/broken.json");
  EXPECT_THAT(wf, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(wf.status().message()), HasSubstr("broken.json: not valid JSON"));
  EXPECT_THAT(LoadWorkflowFile(dir + "/missing.json"), StatusIs(absl::StatusCode::kNotFound));
  std::filesystem::remove_all(dir);
}

TEST(WorkflowFile, EveryExampleConverts) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(NDX_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".json") continue;
    absl::StatusOr<v1::Workflow> wf = LoadWorkflowFile(entry.path().string());
    EXPECT_THAT(wf, IsOk()) << entry.path();
    if (wf.ok()) {
      EXPECT_EQ(wf->id(), entry.path().stem().string());
    }
    ++n;
  }
  EXPECT_GE(n, 5);
}

TEST(WorkflowFile, ResolvesTriggerByIdOrName) {
  v1::Workflow wf;
  v1::Node* a = wf.add_nodes();
  a->set_id("t1");
  a->set_name("Start");
  a->set_type("manual-trigger");
  EXPECT_EQ(*ResolveNodeId(wf, "t1"), "t1");
  EXPECT_EQ(*ResolveNodeId(wf, "Start"), "t1");
  absl::StatusOr<std::string> none = ResolveNodeId(wf, "nope");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("\"Start\" (t1)"));
}

TEST(Cli, UsageErrorsExitTwoWithAMessage) {
  Result r = RunNdx({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no command given"));
  EXPECT_THAT(r.err, HasSubstr("usage: ndx"));
  r = RunNdx({"frobnicate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown command \"frobnicate\""));
  r = RunNdx({"run"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("run needs exactly one workflow FILE"));
  r = RunNdx({"run", "x.json", "--bogus"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown option --bogus"));
  r = RunNdx({"run", std::string(NDX_EXAMPLES_DIR) + "/hello.json", "--data", "{oops"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--data is not valid JSON"));
  r = RunNdx({"run", std::string(NDX_EXAMPLES_DIR) + "/hello.json", "--trigger", "Nope"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no node with id or name \"Nope\""));
  r = RunNdx({"get", "id", "--rpc-timeout", "soon"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--rpc-timeout"));
  r = RunNdx({"delete"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("delete needs exactly one execution ID"));
  r = RunNdx({"list", "--state", "sleepy"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--state \"sleepy\""));
  r = RunNdx({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.out, HasSubstr("usage: ndx"));
}

TEST(Cli, UnreachableServerExitsTwoAndSaysWhatToDo) {
  const std::string addr = absl::StrCat("127.0.0.1:", testing::FreePort());
  Result r = RunNdx({"stats", "--server", addr, "--rpc-timeout", "2s"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach ", addr)));
  EXPECT_THAT(r.err, HasSubstr("NDX_SERVER"));
  // NDX_SERVER is used when --server is absent.
  r = RunNdx({"run", std::string(NDX_EXAMPLES_DIR) + "/hello.json", "--rpc-timeout", "2s"},
             CliEnv{.server = addr});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach ", addr)));
  r = RunNdx({"health", "--server", addr, "--rpc-timeout", "2s"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("grpc.health.v1.Health/Check failed: UNAVAILABLE"));
  r = RunNdx({"workers", "--worker", addr, "--rpc-timeout", "2s"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("WorkerService.GetStatus on " + addr));
  r = RunNdx({"workers", "--server", addr, "--rpc-timeout", "2s"});  // the registry, via the queue
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("ListWorkers"));
}

v1::ExecutionEvent Event(v1::EventType type, const std::string& data = "") {
  v1::ExecutionEvent ev;
  ev.set_type(type);
  ev.set_node_id("n1");
  ev.set_node_name("Double");
  ev.set_node_type("set");
  ev.set_data_json(data);
  return ev;
}

TEST(Format, EventLinesNameTheNodeTypeStatusAndDuration) {
  EXPECT_EQ(FormatEventLine(Event(v1::EVENT_TYPE_NODE_STARTED)), "");
  EXPECT_EQ(FormatEventLine(Event(v1::EVENT_TYPE_NODE_COMPLETED, R"({"duration": 7})")),
            "  completed  Double (set)  7 ms");
  v1::ExecutionEvent failed = Event(v1::EVENT_TYPE_NODE_FAILED, R"({"duration": 3})");
  failed.mutable_error()->set_message("boom");
  failed.mutable_error()->set_code("NODE_EXECUTION_ERROR");
  EXPECT_EQ(FormatEventLine(failed),
            "  failed     Double (set)  3 ms  boom [NODE_EXECUTION_ERROR]");
  EXPECT_EQ(FormatEventLine(Event(v1::EVENT_TYPE_NODE_SKIPPED)), "  skipped    Double (set)");
  v1::ExecutionEvent timed_out = Event(v1::EVENT_TYPE_FAILED, R"({"duration": 90})");
  timed_out.set_execution_state(v1::EXECUTION_STATE_TIMED_OUT);
  EXPECT_EQ(FormatEventLine(timed_out), "timed out  in 90 ms");
  EXPECT_EQ(FormatEventLine(Event(v1::EVENT_TYPE_COMPLETED, R"({"duration": 12})")),
            "completed  in 12 ms");
}

TEST(Format, ResultShowsTheLastNodesItemsOrTheFailingNode) {
  v1::Execution e;
  e.set_state(v1::EXECUTION_STATE_COMPLETED);
  v1::NodeExecution* a = e.add_node_executions();
  a->set_node_id("a");
  a->set_node_name("A");
  a->set_state(v1::NODE_STATE_COMPLETED);
  a->set_output_json(R"({"main": [{"json": {"x": 1}}]})");
  v1::NodeExecution* b = e.add_node_executions();
  b->set_node_id("b");
  b->set_node_name("B");
  b->set_node_type("set");
  b->set_state(v1::NODE_STATE_COMPLETED);
  b->set_output_json(R"({"main": [{"json": {"y": 2}}], "metadata": {}})");
  v1::NodeExecution* c = e.add_node_executions();
  c->set_node_id("c");
  c->set_state(v1::NODE_STATE_SKIPPED);
  std::string out = FormatResult(e);
  EXPECT_THAT(out, HasSubstr("output of \"B\" (b) [set]:"));
  EXPECT_THAT(out, HasSubstr("\"y\": 2"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("metadata")));

  e.set_state(v1::EXECUTION_STATE_FAILED);
  e.mutable_error()->set_message("Error: boom");
  e.mutable_error()->set_code("NODE_EXECUTION_ERROR");
  e.mutable_error()->set_node_id("b");
  e.mutable_error()->set_node_name("B");
  out = FormatResult(e);
  EXPECT_THAT(out, HasSubstr("result: failed at node \"B\" (b) [set]"));
  EXPECT_THAT(out, HasSubstr("error: Error: boom [NODE_EXECUTION_ERROR]"));
}

TEST(Format, NodeRunsAndResultFromEventsWhenTheServerReportsNone) {
  std::vector<v1::ExecutionEvent> events;
  events.push_back(Event(v1::EVENT_TYPE_STARTED));
  events.push_back(Event(v1::EVENT_TYPE_NODE_STARTED));
  events.push_back(Event(v1::EVENT_TYPE_NODE_COMPLETED,
                         R"({"duration": 4, "outputData": {"main": [{"json": {"z": 3}}]}})"));
  v1::ExecutionEvent skipped = Event(v1::EVENT_TYPE_NODE_SKIPPED);
  skipped.set_node_id("n2");
  skipped.set_node_name("Other");
  events.push_back(skipped);
  events.push_back(Event(v1::EVENT_TYPE_COMPLETED, R"({"duration": 9})"));
  v1::Execution e;
  e.set_state(v1::EXECUTION_STATE_COMPLETED);
  FillNodeRunsFromEvents(events, &e);
  ASSERT_EQ(e.node_executions_size(), 2);
  EXPECT_EQ(e.node_executions(0).state(), v1::NODE_STATE_COMPLETED);
  EXPECT_EQ(e.node_executions(0).duration_ms(), 4);
  EXPECT_EQ(e.node_executions(1).state(), v1::NODE_STATE_SKIPPED);
  const std::string out = FormatResult(e);
  EXPECT_THAT(out, HasSubstr("output of \"Double\" (n1) [set]:"));
  EXPECT_THAT(out, HasSubstr("\"z\": 3"));
  EXPECT_THAT(FormatExecution(e, absl::Now()), ::testing::ContainsRegex("Double +set +completed"));
  // Node runs the server reported win.
  FillNodeRunsFromEvents(events, &e);
  EXPECT_EQ(e.node_executions_size(), 2);
}

TEST(Format, StatsAndWorkers) {
  v1::GetQueueStatsResponse r;
  v1::QueueStats* q = r.add_queues();
  q->set_queue("default");
  q->set_waiting(3);
  q->set_active(2);
  *q->mutable_oldest_waiting_age() = google::protobuf::util::TimeUtil::MillisecondsToDuration(1500);
  const std::string table = FormatStatsTable(r);
  EXPECT_THAT(table, HasSubstr("QUEUE"));
  EXPECT_THAT(table, HasSubstr("OLDEST_WAIT"));
  EXPECT_THAT(table, HasSubstr("default"));
  EXPECT_THAT(table, HasSubstr("1.5s"));

  v1::WorkerStatus s;
  s.set_worker_id("w1");
  s.set_hostname("host");
  s.set_state(v1::WORKER_STATE_RUNNING);
  s.set_slots_total(5);
  s.set_slots_busy(2);
  s.add_queues("default");
  const std::string w = FormatWorkerStatus(s, absl::Now());
  EXPECT_THAT(w, HasSubstr("w1 on host"));
  EXPECT_THAT(w, HasSubstr("running, slots 2/5 busy, queues default"));
  EXPECT_THAT(w, HasSubstr("last claim never"));
}

}  // namespace
}  // namespace ndx::cli
