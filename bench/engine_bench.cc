#include "bench/engine_bench.h"

#include <array>
#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "libs/common/status_macros.h"
#include "libs/engine/engine.h"
#include "libs/engine/node_type.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/workflow.h"

namespace ndx::bench {
namespace {

using engine::Json;  // ordered_json

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench] %s\n", message.c_str());
}

// Does nothing; remembers the duration of one node's runs (the expression phase).
class NullObserver final : public engine::ExecutionObserver {
 public:
  explicit NullObserver(std::string timed_node = "") : timed_(std::move(timed_node)) {}
  void OnNodeStarted(const engine::NodeRun&) override {}
  absl::Status OnNodeCompleted(const engine::NodeRun& run, const Json&, const Json&,
                               absl::Duration d, const Json&) override {
    if (!timed_.empty() && run.node->id == timed_) timed += d;
    if (by_node != nullptr) (*by_node)[run.node->id] += d;
    return absl::OkStatus();
  }
  absl::Status OnNodeSkipped(const engine::NodeRun&, absl::string_view, const Json&) override {
    return absl::OkStatus();
  }
  void OnNodeFailed(const engine::NodeRun& run, const absl::Status& e, absl::Duration) override {
    error = absl::StrCat(run.node->id, ": ", e.ToString());
  }
  void OnNodeRetrying(const engine::NodeRun&, int, absl::Duration, const absl::Status&) override {}
  absl::Status OnNodeSuspended(const engine::NodeRun&, const Json&, absl::Time) override {
    return absl::OkStatus();
  }
  absl::Duration timed;
  std::string error;
  std::map<std::string, absl::Duration>* by_node = nullptr;  // optional: time per node

 private:
  std::string timed_;
};

Json N(const std::string& id, const std::string& type, Json params) {
  return {{"id", id}, {"name", id}, {"type", type}, {"parameters", std::move(params)}};
}
Json SetParams(const std::string& key, const std::string& value) {
  Json kv = {{"key", key}, {"value", value}};
  Json entry = {{"keyValue", kv}};
  Json values = Json::array();
  values.push_back(entry);
  return {{"values", values}};
}
Json IfParams(const std::string& key, const std::string& op, Json value) {
  return {{"condition", {{"key", key}, {"expression", op}, {"value", std::move(value)}}}};
}
Json Edges(std::initializer_list<std::array<const char*, 3>> edges) {
  Json conns = Json::array();
  int i = 0;
  for (const auto& e : edges) {
    conns.push_back({{"id", absl::StrCat("c", ++i)},
                     {"sourceNodeId", e[0]},
                     {"sourceOutput", e[1]},
                     {"targetNodeId", e[2]}});
  }
  return conns;
}

// The 10-node workflow: trigger -> set (fast-path expression) -> ifElse -> set | set (the
// false one is skipped) -> merge -> code (JavaScript) -> set (JavaScript expression) -> ifElse ->
// noop.
Json MixedWorkflow() {
  Json nodes = Json::array();
  nodes.push_back(N("n1", "manual-trigger", Json::object()));
  // The manual trigger outputs its own item ({triggeredAt, triggerType, metadata: {source}}), not
  // the trigger data: n2 adds the fields the rest works on.
  Json n2 = SetParams("total", "150");
  n2["values"].push_back(
      {{"keyValue", {{"key", "source"}, {"value", "{{ $json.metadata.source }}"}}}});
  nodes.push_back(N("n2", "set", n2));
  nodes.push_back(N("n3", "ifElse", IfParams("{{ $json.total }}", "larger", 100)));
  nodes.push_back(N("n4", "set", SetParams("tier", "gold")));
  nodes.push_back(N("n5", "set", SetParams("tier", "{{ $json.source }}")));
  nodes.push_back(N("n6", "merge", {{"mode", "append"}}));
  nodes.push_back(
      N("n7", "code", {{"code", "return items.map(i => ({json: {...i, score: i.total * 2}}));"}}));
  nodes.push_back(N("n8", "set", SetParams("sum", "{{ $json.total + $json.score }}")));
  nodes.push_back(N("n9", "ifElse", IfParams("tier", "equal", "gold")));
  nodes.push_back(N("n10", "noop", Json::object()));
  return {{"nodes", nodes},
          {"connections", Edges({{"n1", "main", "n2"},
                                 {"n2", "main", "n3"},
                                 {"n3", "true", "n4"},
                                 {"n3", "false", "n5"},
                                 {"n4", "main", "n6"},
                                 {"n5", "main", "n6"},
                                 {"n6", "main", "n7"},
                                 {"n7", "main", "n8"},
                                 {"n8", "main", "n9"},
                                 {"n9", "true", "n10"}})}};
}

// trigger -> code (makes the items) -> set (one expression per item).
Json ExpressionWorkflow(int items, const std::string& item_js, const std::string& value) {
  Json nodes = Json::array();
  nodes.push_back(N("t", "manual-trigger", Json::object()));
  nodes.push_back(N("make", "code",
                    {{"code", absl::StrCat("return Array.from({length: ", items,
                                           "}, (_, i) => ({json: ", item_js, "}));")}}));
  nodes.push_back(N("eval", "set", SetParams("r", value)));
  return {{"nodes", nodes},
          {"connections", Edges({{"t", "main", "make"}, {"make", "main", "eval"}})}};
}

}  // namespace

absl::StatusOr<std::vector<nlohmann::json>> RunEngineBench(const EngineBenchOptions& o) {
  std::vector<nlohmann::json> records;
  engine::NodeRegistry registry;
  engine::RegisterBuiltinNodes(registry);
  NDX_ASSIGN_OR_RETURN(std::unique_ptr<engine::JsSandbox> js,
                       engine::JsSandbox::Create(engine::JsLimits{}));
  const engine::Engine eng;

  // 1. The mixed 10-node workflow.
  {
    NDX_ASSIGN_OR_RETURN(engine::Workflow wf, engine::ParseWorkflow(MixedWorkflow(), registry));
    engine::RunRequest req;
    req.workflow = &wf;
    req.execution = {.execution_id = "bench-exec", .workflow_id = "wf-bench"};
    req.js = js.get();
    // Check the result once (and warm up).
    NullObserver check;
    engine::RunResult first = eng.Run(req, check);
    if (first.outcome != engine::RunOutcome::kCompleted || first.runs.size() != 10) {
      return absl::InternalError(absl::StrCat("the mixed workflow did not complete as expected: ",
                                              engine::RunOutcomeName(first.outcome), " ",
                                              first.error.ToString(), " ", check.error, "; ",
                                              first.runs.size(), " runs"));
    }
    int skipped = 0;
    std::string skipped_ids;
    for (const auto& r : first.runs) {
      if (r.status != engine::RunStatus::kSkipped) continue;
      ++skipped;
      absl::StrAppend(&skipped_ids, skipped_ids.empty() ? "" : ",", r.node_id);
    }
    Progress(absl::StrCat("mixed workflow, last output: ", first.outputs["n10"].dump()));
    std::map<std::string, absl::Duration> by_node;
    for (int i = 0; i < 50; ++i) {
      NullObserver warm;
      (void)eng.Run(req, warm);
    }
    int64_t runs = 0;
    const double cpu0 = ThreadCpuUs();
    const int64_t start = MonotonicNs();
    const int64_t end = start + absl::ToInt64Nanoseconds(o.time);
    while (MonotonicNs() < end) {
      NullObserver obs;
      obs.by_node = &by_node;
      engine::RunResult r = eng.Run(req, obs);
      if (r.outcome != engine::RunOutcome::kCompleted) {
        return absl::InternalError(absl::StrCat("run failed: ", r.error.ToString()));
      }
      ++runs;
    }
    const double seconds = (MonotonicNs() - start) / 1e9;
    const double cpu_s = (ThreadCpuUs() - cpu0) / 1e6;
    nlohmann::json rec = {{"impl", "ndx"},
                          {"mode", "engine-run"},
                          {"nodes", 10},
                          {"skipped_nodes", skipped},
                          {"skipped", skipped_ids},
                          {"runs", runs},
                          {"seconds", seconds},
                          {"cpu_seconds", cpu_s},
                          {"exec_per_s", runs / seconds},
                          {"exec_per_cpu_s", runs / cpu_s},
                          {"us_per_exec_cpu", cpu_s * 1e6 / runs}};
    nlohmann::json nodes_us = nlohmann::json::object();
    for (const auto& [id, d] : by_node) nodes_us[id] = absl::ToDoubleMicroseconds(d) / runs;
    rec["node_us_per_exec"] = nodes_us;
    Progress(rec.dump());
    records.push_back(std::move(rec));
  }

  // 2. Expression evaluations.
  struct Case {
    const char* name;
    const char* item_js;
    const char* value;
  };
  const Case cases[] = {
      {"js", "{a: i, b: 2}", "{{ $json.a + $json.b }}"},
      {"fast", "{a: {b: i}}", "{{ $json.a.b }}"},
      {"literal", "{a: {b: i}}", "constant"},
  };
  for (const Case& c : cases) {
    NDX_ASSIGN_OR_RETURN(
        engine::Workflow wf,
        engine::ParseWorkflow(ExpressionWorkflow(o.items, c.item_js, c.value), registry));
    engine::RunRequest req;
    req.workflow = &wf;
    req.execution = {.execution_id = "bench-exec", .workflow_id = "wf-bench"};
    req.js = js.get();
    {
      NullObserver check("eval");
      engine::RunResult r = eng.Run(req, check);
      if (r.outcome != engine::RunOutcome::kCompleted) {
        return absl::InternalError(absl::StrCat("expression workflow ", c.name, ": ",
                                                r.error.ToString(), " ", check.error));
      }
      const Json& out = r.outputs["eval"]["main"];
      if (!out.is_array() || out.size() != static_cast<size_t>(o.items)) {
        return absl::InternalError(
            absl::StrCat("expression workflow ", c.name, ": ", out.size(), " items out"));
      }
      Progress(absl::StrCat("expression ", c.name, ": item 7 -> ", out[7].dump()));
    }
    int64_t evals = 0;
    absl::Duration in_set;
    const int64_t end = MonotonicNs() + absl::ToInt64Nanoseconds(o.time);
    while (MonotonicNs() < end) {
      NullObserver obs("eval");
      engine::RunResult r = eng.Run(req, obs);
      if (r.outcome != engine::RunOutcome::kCompleted) {
        return absl::InternalError(absl::StrCat("run failed: ", r.error.ToString()));
      }
      evals += o.items;
      in_set += obs.timed;
    }
    const double s = absl::ToDoubleSeconds(in_set);
    nlohmann::json rec = {{"impl", "ndx"},
                          {"mode", "expression"},
                          {"case", c.name},
                          {"expression", c.value},
                          {"evals", evals},
                          {"set_node_seconds", s},
                          {"evals_per_s", evals / s},
                          {"us_per_eval", s * 1e6 / evals}};
    Progress(rec.dump());
    records.push_back(std::move(rec));
  }
  return records;
}

}  // namespace ndx::bench
