// Runs every workflow of corpus/*.json and checks its expected result node by node; then runs it
// again interrupted after each checkpoint (the observer refuses the checkpoint, as a worker
// that lost its lease) and resumed from the checkpoints stored so far, and checks that the
// resumed run re-runs no completed node and ends with the same result.
//
// Corpus file format:
//   {"description": "...", "workflow": {...NodeDrop workflow...},
//    "trigger": "<node id>"?, "triggerData": ...?, "vars": {...}?,
//    "maxInlineWaitMs": N?, "jsTimeoutMs": N? (EngineOptions),
//    "expect": {"outcome": "completed" | "failed" | ...,
//               "error": {"nodeId", "code", "messageContains", "transient"}?,
//               "events": ["started n1", "completed n1", ...]?,
//               "runs": [{"key": "n1", "status": "completed" | "skipped",
//                         "main": [<item json>...]?, "branches": {"true": [...]}?,
//                         "metadata": {...subset...}?}, ...]},
//    "parseError": ["substring", ...]?   // the workflow must be rejected
//   }
// `$vars.baseUrl` is the loopback server's URL. Item jsons compare without key order.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/check.h"
#include "libs/engine/engine.h"
#include "libs/engine/engine_testing.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/js/js_sandbox.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "tests/testing/status_matchers.h"
#include "tests/workflows/loopback_server.h"

namespace ndx::engine {
namespace {

using ::ndx::engine::testing::LoopbackServer;
using ::ndx::engine::testing::RecordingObserver;

nlohmann::json Unordered(const Json& j) { return nlohmann::json::parse(j.dump()); }

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(NDX_WORKFLOWS_CORPUS_DIR)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool env_created = false;

class Env {
 public:
  static Env& Get() {
    static Env* env = new Env();
    return *env;
  }
  NodeRegistry registry;
  LoopbackServer server;
  HttpClient http;
  std::unique_ptr<JsSandbox> js;

 private:
  Env() {
    env_created = true;
    InitJsEngine();
    InitHttpClient();
    RegisterBuiltinNodes(registry);
    absl::StatusOr<std::unique_ptr<JsSandbox>> sandbox = JsSandbox::Create(JsLimits{});
    NDX_CHECK(sandbox.ok());
    js = *std::move(sandbox);
  }
};

// SpiderMonkey must see its contexts destroyed before the process exits.
class DestroySandboxAtEnd : public ::testing::Environment {
 public:
  void TearDown() override {
    if (env_created) Env::Get().js.reset();
  }
};
::testing::Environment* const kDestroySandbox =
    ::testing::AddGlobalTestEnvironment(new DestroySandboxAtEnd);

class CorpusTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::ifstream in(std::string(NDX_WORKFLOWS_CORPUS_DIR) + "/" + GetParam() + ".json");
    ASSERT_TRUE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    spec_ = Json::parse(ss.str(), nullptr, false);
    ASSERT_FALSE(spec_.is_discarded()) << "corpus file is not valid JSON";
  }

  RunRequest MakeRequest(const Workflow& wf, common::FakeClock& clock) {
    Env& env = Env::Get();
    RunRequest req;
    req.workflow = &wf;
    req.trigger_node_id = spec_.value("trigger", "");
    req.trigger_data = spec_.value("triggerData", Json());
    req.execution = {.execution_id = "exec-1", .workflow_id = "wf-1"};
    req.vars = spec_.value("vars", Json::object());
    req.vars["baseUrl"] = env.server.base_url();
    req.js = env.js.get();
    req.http = &env.http;
    req.clock = &clock;
    return req;
  }

  Json spec_;
};

void ExpectRunsEqual(const RunResult& got, const RunResult& want) {
  ASSERT_EQ(got.runs.size(), want.runs.size());
  for (size_t i = 0; i < got.runs.size(); ++i) {
    EXPECT_EQ(got.runs[i].key, want.runs[i].key) << "run " << i;
    EXPECT_EQ(got.runs[i].status, want.runs[i].status) << got.runs[i].key;
    EXPECT_EQ(Unordered(got.runs[i].output), Unordered(want.runs[i].output)) << got.runs[i].key;
  }
}

TEST_P(CorpusTest, MatchesExpectedAndResumesAfterEveryNode) {
  Env& env = Env::Get();
  absl::StatusOr<Workflow> wf = ParseWorkflow(spec_["workflow"], env.registry);
  if (spec_.contains("parseError")) {
    ASSERT_THAT(wf, ndx::testing::StatusIs(absl::StatusCode::kInvalidArgument));
    for (const Json& s : spec_["parseError"]) {
      EXPECT_THAT(std::string(wf.status().message()), ::testing::HasSubstr(s.get<std::string>()));
    }
    return;
  }
  ASSERT_THAT(wf, ndx::testing::IsOk());
  const Json& expect = spec_["expect"];
  EngineOptions options;
  if (spec_.contains("maxInlineWaitMs")) {
    options.max_inline_wait = absl::Milliseconds(spec_["maxInlineWaitMs"].get<int>());
  }
  if (spec_.contains("jsTimeoutMs")) {
    options.js_limits.timeout = absl::Milliseconds(spec_["jsTimeoutMs"].get<int>());
  }
  Engine engine(options);

  common::FakeClock clock;
  RecordingObserver observer;
  RunResult full = engine.Run(MakeRequest(*wf, clock), observer);

  EXPECT_EQ(RunOutcomeName(full.outcome), expect.value("outcome", "completed"))
      << full.error.ToString();
  if (expect.contains("error")) {
    const Json& e = expect["error"];
    if (e.contains("nodeId")) {
      EXPECT_EQ(full.failed_node_id, e["nodeId"].get<std::string>());
    }
    if (e.contains("code")) {
      EXPECT_EQ(absl::StatusCodeToString(full.error.code()), e["code"].get<std::string>());
    }
    if (e.contains("messageContains")) {
      EXPECT_THAT(std::string(full.error.message()),
                  ::testing::HasSubstr(e["messageContains"].get<std::string>()));
    }
    if (e.contains("transient")) {
      EXPECT_EQ(full.transient, e["transient"].get<bool>());
    }
  }
  if (expect.contains("events")) {
    std::vector<std::string> want;
    for (const Json& e : expect["events"]) want.push_back(e.get<std::string>());
    EXPECT_EQ(observer.events, want);
  }
  // No node run twice.
  std::set<std::string> unique(observer.started.begin(), observer.started.end());
  EXPECT_EQ(unique.size(), observer.started.size());

  const Json& runs = expect["runs"];
  std::vector<std::string> got_keys;
  for (const RunRecord& r : full.runs) got_keys.push_back(r.key);
  std::vector<std::string> want_keys;
  for (const Json& r : runs) want_keys.push_back(r["key"].get<std::string>());
  EXPECT_EQ(got_keys, want_keys) << "run order";
  for (size_t i = 0; i < std::min(runs.size(), full.runs.size()); ++i) {
    const Json& want = runs[i];
    const RunRecord& got = full.runs[i];
    if (got.key != want["key"].get<std::string>()) continue;
    const bool skipped = want.value("status", "completed") == "skipped";
    EXPECT_EQ(got.status == RunStatus::kSkipped, skipped) << got.key;
    if (skipped) continue;
    if (want.contains("main")) {
      Json items = Json::array();
      for (const Json& item : got.output["main"]) items.push_back(item["json"]);
      EXPECT_EQ(Unordered(items), Unordered(want["main"])) << got.key;
    }
    if (want.contains("branches")) {
      for (auto it = want["branches"].begin(); it != want["branches"].end(); ++it) {
        Json items = Json::array();
        for (const Json& item : got.output["branches"][it.key()]) items.push_back(item["json"]);
        EXPECT_EQ(Unordered(items), Unordered(it.value())) << got.key << " branch " << it.key();
      }
    }
    if (want.contains("metadata")) {
      for (auto it = want["metadata"].begin(); it != want["metadata"].end(); ++it) {
        EXPECT_EQ(Unordered(got.output["metadata"][it.key()]), Unordered(it.value()))
            << got.key << " metadata." << it.key();
      }
    }
  }

  // Interrupt after every checkpoint, then resume from what was stored.
  if (full.outcome == RunOutcome::kSuspended) return;  // covered by engine_test
  const int total = static_cast<int>(observer.checkpoint_order.size());
  for (int k = 0; k < total; ++k) {
    SCOPED_TRACE(::testing::Message() << "interrupted at checkpoint " << k << " ("
                                      << observer.checkpoint_order[k] << ")");
    common::FakeClock clock1;
    RecordingObserver crash(k);
    RunResult interrupted = engine.Run(MakeRequest(*wf, clock1), crash);
    ASSERT_EQ(interrupted.outcome, RunOutcome::kStopped);
    common::FakeClock clock2;
    RunRequest resume = MakeRequest(*wf, clock2);
    resume.checkpoints = crash.checkpoints;
    RecordingObserver resumed;
    RunResult result = engine.Run(resume, resumed);
    for (const std::string& key : resumed.started) {
      EXPECT_EQ(crash.checkpoints.count(key), 0u) << key << " ran again after its checkpoint";
    }
    EXPECT_EQ(result.outcome, full.outcome);
    EXPECT_EQ(result.failed_node_id, full.failed_node_id);
    ExpectRunsEqual(result, full);
    EXPECT_EQ(Unordered(result.outputs), Unordered(full.outputs));
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(CorpusFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char c) { return !std::isalnum(c); },
                               '_');
                           return name;
                         });

}  // namespace
}  // namespace ndx::engine
