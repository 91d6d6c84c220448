#include "libs/engine/engine.h"

#include <algorithm>
#include <deque>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/engine/errors.h"
#include "libs/engine/expression.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

constexpr int kCheckpointVersion = 1;

enum class Flow { kContinue, kStop };

const Json& EmptyArray() {
  static const Json* const kEmpty = new Json(Json::array());
  return *kEmpty;
}
const Json& EmptyObject() {
  static const Json* const kEmpty = new Json(Json::object());
  return *kEmpty;
}
const Json& NullJson() {
  static const Json* const kNull = new Json();
  return *kNull;
}

// The items a connection from `output` (a standardized output) carries on `name`.
const Json& ItemsOn(const Json& output, const std::string& name) {
  if (auto b = output.find("branches"); b != output.end() && b->is_object()) {
    auto it = b->find(name);
    return it != b->end() && it->is_array() ? *it : EmptyArray();
  }
  auto m = output.find("main");
  return m != output.end() && m->is_array() ? *m : EmptyArray();
}

struct NodeState {
  enum class Status { kPending, kCompleted, kSkipped };
  Status status = Status::kPending;
  const Json* output = nullptr;
};

class RunState;

// NodeContext + ExpressionEnv for one attempt of one node run.
class NodeContextImpl final : public NodeContext, public ExpressionEnv {
 public:
  NodeContextImpl(RunState& run, const Node& node, const std::string& key, const Json& items,
                  const Json& groups, absl::Time deadline, int iteration, const Json* resumed)
      : run_(run),
        node_(node),
        key_(key),
        items_(items),
        groups_(groups),
        deadline_(deadline),
        iteration_(iteration),
        resumed_(resumed) {}

  // NodeContext.
  const Node& node() const override { return node_; }
  const std::string& run_key() const override { return key_; }
  const Json& items() const override { return items_; }
  const Json& input_per_connection() const override { return groups_; }
  absl::StatusOr<Json> Param(absl::string_view name, int item_index) const override;
  absl::StatusOr<Json> Resolve(const Json& raw, int item_index) const override;
  const Json& RawParam(absl::string_view name) const override {
    auto it = node_.parameters.find(std::string(name));
    return it == node_.parameters.end() ? NullJson() : *it;
  }
  const ExecutionInfo& execution() const override;
  const Json& trigger_data() const override;
  const CancellationToken& cancel() const override;
  absl::Time deadline() const override { return deadline_; }
  common::Clock& clock() const override;
  JsSandbox* js() const override;
  const JsLimits& js_limits() const override;
  const HttpClient* http() const override;
  size_t max_http_response_bytes() const override;
  absl::Duration max_inline_wait() const override;
  const Json* NodeOutput(absl::string_view id_or_name) const override;
  Json JsGlobals(int item_index) const override {
    BuildJsGlobals();
    Json globals = js_globals_;
    globals["$json"] = ItemJsonAt(item_index);
    globals["$index"] = item_index < 0 ? 0 : item_index;
    return globals;
  }
  int loop_iteration() const override { return iteration_; }
  const Json* resumed_state() const override { return resumed_; }

  // ExpressionEnv.
  const Json* NodeItemJson(absl::string_view id_or_name) const override;
  const Json& Execution() const override;
  const Json& Vars() const override;
  const Json& WorkflowInfo() const override;
  absl::StatusOr<Json> EvaluateJs(const std::string& code, const Json& item_json,
                                  int item_index) const override;

 private:
  void BuildJsGlobals() const;
  const Json& ItemJsonAt(int index) const {
    if (index < 0 || static_cast<size_t>(index) >= items_.size()) return EmptyObject();
    return ItemJson(items_[index]);
  }

  RunState& run_;
  const Node& node_;
  const std::string& key_;
  const Json& items_;
  const Json& groups_;
  absl::Time deadline_;
  int iteration_;
  const Json* resumed_;
  mutable Json js_globals_;  // built on the first JavaScript evaluation of this attempt
};

class RunState {
 public:
  RunState(const EngineOptions& options, const RunRequest& req, ExecutionObserver& observer)
      : options_(options),
        req_(req),
        wf_(*req.workflow),
        observer_(observer),
        clock_(req.clock != nullptr ? *req.clock : common::RealClock()),
        token_(req.cancel != nullptr ? *req.cancel : own_token_),
        state_(wf_.nodes().size()),
        latest_(wf_.nodes().size(), nullptr) {
    execution_json_ = {{"id", req.execution.execution_id}, {"mode", req.execution.mode}};
    workflow_json_ = {
        {"id", req.execution.workflow_id.empty() ? wf_.id() : req.execution.workflow_id}};
  }

  RunResult Run();

  // Accessors for NodeContextImpl.
  const EngineOptions& options() const { return options_; }
  const RunRequest& request() const { return req_; }
  const Workflow& workflow() const { return wf_; }
  common::Clock& clock() const { return clock_; }
  const CancellationToken& token() const { return token_; }
  const Json& execution_json() const { return execution_json_; }
  const Json& workflow_json() const { return workflow_json_; }
  const Json* latest(int node) const { return latest_[node]; }

 private:
  Flow RunScope(const Scope& scope, const std::string& path, int start, const Json* feeder_output);
  Flow RunLoop(const Node& node, const std::string& base_key, const std::string& path,
               const Json& groups);
  Flow RunNode(const Node& node, const std::string& key, const std::string& path,
               const Json& groups, int iteration);
  Flow Skip(const Node& node, const std::string& key, const std::string& path,
            const std::string& reason);
  Flow Complete(const NodeRun& run, Json output, const Json& state, absl::Time started);
  Flow Fail(const NodeRun& run, const absl::Status& error, absl::Duration duration);
  Flow Interrupted(const NodeRun* run);  // cancelled or timed out
  bool ShouldStop() const { return token_.cancelled() || clock_.Now() >= req_.deadline; }
  absl::StatusOr<Json> Standardize(const Node& node, NodeResult& result) const;
  Json ActiveConnections(const Node& node, const Json& output) const;
  void Record(const Node& node, const std::string& key, RunStatus status, Json output);

  const EngineOptions& options_;
  const RunRequest& req_;
  const Workflow& wf_;
  ExecutionObserver& observer_;
  common::Clock& clock_;
  CancellationToken own_token_;
  const CancellationToken& token_;
  std::vector<NodeState> state_;
  std::vector<const Json*> latest_;
  std::deque<RunRecord> records_;  // stable addresses: state_/latest_ point into them
  Json execution_json_;
  Json workflow_json_;
  RunResult result_;
};

// ---- NodeContextImpl ----

absl::StatusOr<Json> NodeContextImpl::Param(absl::string_view name, int item_index) const {
  auto it = node_.parameters.find(std::string(name));
  if (it == node_.parameters.end()) return Json();
  absl::StatusOr<Json> v = ResolveValue(*it, &run_.workflow().templates(node_.index),
                                        ItemJsonAt(item_index), item_index, *this);
  if (!v.ok()) {
    return absl::Status(v.status().code(),
                        absl::StrCat(node_.Label(), ": parameter \"", std::string(name),
                                     "\": ", v.status().message()));
  }
  return v;
}

absl::StatusOr<Json> NodeContextImpl::Resolve(const Json& raw, int item_index) const {
  absl::StatusOr<Json> v = ResolveValue(raw, &run_.workflow().templates(node_.index),
                                        ItemJsonAt(item_index), item_index, *this);
  if (!v.ok()) {
    return absl::Status(v.status().code(), absl::StrCat(node_.Label(), ": ", v.status().message()));
  }
  return v;
}

const ExecutionInfo& NodeContextImpl::execution() const { return run_.request().execution; }
const Json& NodeContextImpl::trigger_data() const { return run_.request().trigger_data; }
const CancellationToken& NodeContextImpl::cancel() const { return run_.token(); }
common::Clock& NodeContextImpl::clock() const { return run_.clock(); }
JsSandbox* NodeContextImpl::js() const { return run_.request().js; }
const JsLimits& NodeContextImpl::js_limits() const { return run_.options().js_limits; }
const HttpClient* NodeContextImpl::http() const { return run_.request().http; }
size_t NodeContextImpl::max_http_response_bytes() const {
  return run_.options().max_http_response_bytes;
}
absl::Duration NodeContextImpl::max_inline_wait() const { return run_.options().max_inline_wait; }

const Json* NodeContextImpl::NodeOutput(absl::string_view id_or_name) const {
  const Node* n = run_.workflow().FindNodeByIdOrName(id_or_name);
  return n == nullptr ? nullptr : run_.latest(n->index);
}

const Json* NodeContextImpl::NodeItemJson(absl::string_view id_or_name) const {
  const Json* out = NodeOutput(id_or_name);
  if (out == nullptr) return nullptr;
  auto main = out->find("main");
  if (main == out->end() || !main->is_array() || main->empty()) return nullptr;
  return &ItemJson((*main)[0]);
}

const Json& NodeContextImpl::Execution() const { return run_.execution_json(); }
const Json& NodeContextImpl::Vars() const { return run_.request().vars; }
const Json& NodeContextImpl::WorkflowInfo() const { return run_.workflow_json(); }

absl::StatusOr<Json> NodeContextImpl::EvaluateJs(const std::string& code, const Json& item_json,
                                                 int item_index) const {
  JsSandbox* js = run_.request().js;
  if (js == nullptr) {
    return absl::FailedPreconditionError(
        "JavaScript is not available in this process (no JsSandbox)");
  }
  BuildJsGlobals();
  js_globals_["$json"] = item_json;
  js_globals_["$index"] = item_index < 0 ? 0 : item_index;
  JsLimits limits = run_.options().js_limits;
  const absl::Duration time_left = deadline_ - run_.clock().Now();
  limits.timeout = std::min(limits.timeout, time_left);
  if (limits.timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("no time left to evaluate the expression");
  }
  absl::StatusOr<Json> value = js->EvaluateExpression(code, js_globals_, limits, &run_.token());
  if (!value.ok()) {
    return absl::Status(PermanentIfOwnTimeLimit(value.status().code(), limits.timeout, time_left),
                        value.status().message());
  }
  return value;
}

void NodeContextImpl::BuildJsGlobals() const {
  if (js_globals_.is_null()) {
    Json nodes = Json::object();
    for (const Node& n : run_.workflow().nodes()) {
      const Json* first = NodeItemJson(n.id);
      if (first == nullptr) continue;
      Json value = first->is_object() ? *first : Json::object();
      if (!value.contains("json")) value["json"] = *first;
      if (n.name != n.id && !nodes.contains(n.name)) nodes[n.name] = value;
      nodes[n.id] = std::move(value);
    }
    js_globals_ = Json::object();
    js_globals_["$json"] = Json::object();
    js_globals_["$index"] = 0;
    js_globals_["$node"] = std::move(nodes);
    js_globals_["$execution"] = run_.execution_json();
    js_globals_["$vars"] = run_.request().vars;
    js_globals_["$workflow"] = run_.workflow_json();
    js_globals_["$now"] = FormatIsoTime(run_.clock().Now());
  }
}

// ---- RunState ----

void RunState::Record(const Node& node, const std::string& key, RunStatus status, Json output) {
  records_.push_back(RunRecord{key, node.id, status, std::move(output)});
  NodeState& s = state_[node.index];
  if (status == RunStatus::kCompleted) {
    s.status = NodeState::Status::kCompleted;
    s.output = &records_.back().output;
    latest_[node.index] = s.output;
  } else {
    s.status = NodeState::Status::kSkipped;
    s.output = nullptr;
  }
}

RunResult RunState::Run() {
  const Node* start = nullptr;
  if (req_.trigger_node_id.empty()) {
    start = wf_.DefaultTrigger();
    if (start == nullptr) {
      result_.outcome = RunOutcome::kFailed;
      result_.error = absl::InvalidArgumentError("the workflow has no trigger node");
      return std::move(result_);
    }
  } else {
    start = wf_.FindNode(req_.trigger_node_id);
    if (start == nullptr) {
      result_.outcome = RunOutcome::kFailed;
      result_.error = absl::InvalidArgumentError(
          absl::StrCat("trigger node \"", req_.trigger_node_id, "\" does not exist"));
      return std::move(result_);
    }
  }
  if (start->disabled) {
    result_.outcome = RunOutcome::kFailed;
    result_.error =
        absl::InvalidArgumentError(absl::StrCat("trigger ", start->Label(), " is disabled"));
    return std::move(result_);
  }
  std::shared_ptr<const Scope> scope = wf_.TopScope(start->index);
  if (RunScope(*scope, "", start->index, nullptr) == Flow::kContinue) {
    result_.outcome = RunOutcome::kCompleted;
  }
  result_.runs.reserve(records_.size());
  for (RunRecord& r : records_) result_.runs.push_back(r);
  for (const Node& n : wf_.nodes()) {
    if (latest_[n.index] != nullptr) result_.outputs[n.id] = *latest_[n.index];
  }
  if (result_.outcome == RunOutcome::kFailed) result_.transient = IsTransient(result_.error);
  return std::move(result_);
}

Flow RunState::Interrupted(const NodeRun* run) {
  if (token_.cancelled()) {
    result_.outcome = RunOutcome::kCancelled;
    result_.error = token_.reason();
  } else {
    result_.outcome = RunOutcome::kTimedOut;
    result_.error = absl::DeadlineExceededError(
        run != nullptr ? absl::StrCat("execution timed out while running ", run->node->Label())
                       : "execution timed out");
  }
  if (run != nullptr) {
    result_.failed_node_id = run->node->id;
    result_.failed_run_key = run->key;
  }
  return Flow::kStop;
}

Flow RunState::RunScope(const Scope& scope, const std::string& path, int start,
                        const Json* feeder_output) {
  const std::vector<Node>& nodes = wf_.nodes();
  const std::vector<Connection>& conns = wf_.connections();
  for (int n : scope.order) state_[n] = NodeState{};
  for (int n : scope.order) {
    if (ShouldStop()) return Interrupted(nullptr);
    const Node& node = nodes[n];
    Json groups = Json::array();
    bool any_active = false;
    if (n == start) {
      Json items = Json::array();
      if (!req_.trigger_data.is_null()) items.push_back(MakeItem(req_.trigger_data));
      groups.push_back(std::move(items));
      any_active = true;
    } else {
      for (int ci : node.incoming) {
        const Connection& c = conns[ci];
        if (c.back_edge) continue;
        const Json* source_output = nullptr;
        if (c.source == scope.feeder) {
          source_output = feeder_output;
        } else if (scope.in_scope[c.source]) {
          source_output = state_[c.source].output;  // null when skipped
        } else {
          continue;  // not reachable from this trigger: not an input
        }
        const Json& items =
            source_output != nullptr ? ItemsOn(*source_output, c.source_output) : EmptyArray();
        any_active = any_active || !items.empty();
        groups.push_back(items);
      }
    }
    const std::string key = path.empty() ? node.id : absl::StrCat(node.id, "@", path);
    Flow flow;
    if (!any_active) {
      flow = Skip(node, key, path, "every input connection is pruned (no items)");
    } else if (node.node_type->is_loop() && !node.disabled) {
      flow = RunLoop(node, key, path, groups);
    } else {
      flow = RunNode(node, key, path, groups, -1);
    }
    if (flow == Flow::kStop) return flow;
  }
  return Flow::kContinue;
}

Flow RunState::RunLoop(const Node& node, const std::string& base_key, const std::string& path,
                       const Json& groups) {
  const Scope& body = wf_.LoopBody(node.index);
  for (int k = 0;; ++k) {
    const std::string key = absl::StrCat(base_key, "#", k);
    if (k >= options_.max_loop_iterations) {
      NodeRun run{&node, key, k, path};
      return Fail(run,
                  absl::FailedPreconditionError(absl::StrCat(
                      node.Label(), ": more than ", options_.max_loop_iterations, " iterations")),
                  absl::ZeroDuration());
    }
    if (k > 0 && ShouldStop()) return Interrupted(nullptr);
    if (RunNode(node, key, path, groups, k) == Flow::kStop) return Flow::kStop;
    const Json& output = *state_[node.index].output;
    if (!ItemsOn(output, "loop").empty()) {
      const std::string body_path = absl::StrCat(path, path.empty() ? "" : "/", node.id, ":", k);
      if (RunScope(body, body_path, -1, &output) == Flow::kStop) return Flow::kStop;
      continue;
    }
    if (!ItemsOn(output, "done").empty()) return Flow::kContinue;
    NodeRun run{&node, key, k, path};
    return Fail(run,
                absl::FailedPreconditionError(absl::StrCat(
                    node.Label(), ": loop is stuck (neither `loop` nor `done` has items)")),
                absl::ZeroDuration());
  }
}

Flow RunState::Skip(const Node& node, const std::string& key, const std::string& path,
                    const std::string& reason) {
  Record(node, key, RunStatus::kSkipped, Json());
  auto cp = req_.checkpoints.find(key);
  if (cp != req_.checkpoints.end() && cp->second.is_object() &&
      cp->second.value("status", "") == "skipped") {
    return Flow::kContinue;  // reported before the interruption
  }
  Json checkpoint = {{"v", kCheckpointVersion}, {"status", "skipped"}, {"reason", reason}};
  NodeRun run{&node, key, -1, path};
  absl::Status st = observer_.OnNodeSkipped(run, reason, checkpoint);
  if (!st.ok()) {
    result_.outcome = RunOutcome::kStopped;
    result_.error = st;
    return Flow::kStop;
  }
  return Flow::kContinue;
}

Flow RunState::Fail(const NodeRun& run, const absl::Status& error, absl::Duration duration) {
  observer_.OnNodeFailed(run, error, duration);
  result_.outcome = RunOutcome::kFailed;
  result_.error = error;
  result_.failed_node_id = run.node->id;
  result_.failed_run_key = run.key;
  return Flow::kStop;
}

absl::StatusOr<Json> RunState::Standardize(const Node& node, NodeResult& result) const {
  if (!result.outputs.is_object()) {
    return absl::InternalError(absl::StrCat(node.Label(), ": node returned no output object"));
  }
  for (auto it = result.outputs.begin(); it != result.outputs.end(); ++it) {
    if (std::find(node.outputs.begin(), node.outputs.end(), it.key()) == node.outputs.end()) {
      return absl::InternalError(
          absl::StrCat(node.Label(), ": node returned undeclared output \"", it.key(), "\""));
    }
    if (!it.value().is_array()) {
      return absl::InternalError(
          absl::StrCat(node.Label(), ": output \"", it.key(), "\" is not an array"));
    }
  }
  const bool single = node.outputs.size() == 1 && node.outputs[0] == "main";
  size_t total = 0;
  for (const std::string& name : node.outputs) {
    auto it = result.outputs.find(name);
    if (it != result.outputs.end()) total += it->size();
  }
  if (total == 0 && node.settings.always_output_data) {
    const std::string fallback = node.node_type->FallbackOutput(node.outputs);
    result.outputs[fallback] = Json::array({MakeItem(Json::object())});
  }
  Json out = Json::object();
  if (single) {
    auto it = result.outputs.find("main");
    out["main"] = it != result.outputs.end() ? std::move(*it) : Json::array();
  } else {
    Json main = Json::array();
    Json branches = Json::object();
    for (const std::string& name : node.outputs) {
      auto it = result.outputs.find(name);
      Json items = it != result.outputs.end() ? std::move(*it) : Json::array();
      for (const Json& item : items) main.push_back(item);
      branches[name] = std::move(items);
    }
    out["main"] = std::move(main);
    out["branches"] = std::move(branches);
  }
  Json metadata = {{"nodeType", node.type},
                   {"outputCount", node.outputs.size()},
                   {"hasMultipleBranches", !single}};
  if (result.metadata.is_object()) {
    for (auto it = result.metadata.begin(); it != result.metadata.end(); ++it) {
      metadata[it.key()] = std::move(it.value());
    }
  }
  out["metadata"] = std::move(metadata);
  return out;
}

Json RunState::ActiveConnections(const Node& node, const Json& output) const {
  Json active = Json::array();
  for (int ci : node.outgoing) {
    const Connection& c = wf_.connections()[ci];
    if (ItemsOn(output, c.source_output).empty()) continue;
    active.push_back({{"id", c.id},
                      {"sourceNodeId", node.id},
                      {"targetNodeId", wf_.nodes()[c.target].id},
                      {"sourceOutput", c.source_output}});
  }
  return active;
}

Flow RunState::Complete(const NodeRun& run, Json output, const Json& state, absl::Time started) {
  Json checkpoint = {{"v", kCheckpointVersion}, {"status", "completed"}};
  checkpoint["output"] = std::move(output);
  if (!state.is_null()) checkpoint["state"] = state;
  const Json active = ActiveConnections(*run.node, checkpoint["output"]);
  absl::Status st = observer_.OnNodeCompleted(run, checkpoint, checkpoint["output"],
                                              clock_.Now() - started, active);
  if (!st.ok()) {
    result_.outcome = RunOutcome::kStopped;
    result_.error = st;
    return Flow::kStop;
  }
  Record(*run.node, run.key, RunStatus::kCompleted, std::move(checkpoint["output"]));
  return Flow::kContinue;
}

Flow RunState::RunNode(const Node& node, const std::string& key, const std::string& path,
                       const Json& groups, int iteration) {
  NodeRun run{&node, key, iteration, path};
  const Json* resumed = nullptr;
  if (auto cp = req_.checkpoints.find(key); cp != req_.checkpoints.end()) {
    const Json& c = cp->second;
    const std::string status = c.is_object() ? c.value("status", "") : "";
    if (status == "completed") {
      auto out = c.find("output");
      if (out == c.end() || !out->is_object() || !out->contains("main")) {
        result_.outcome = RunOutcome::kFailed;
        result_.error = absl::FailedPreconditionError(
            absl::StrCat("checkpoint of run \"", key, "\" has no valid output"));
        result_.failed_node_id = node.id;
        result_.failed_run_key = key;
        return Flow::kStop;
      }
      Record(node, key, RunStatus::kCompleted, *out);
      return Flow::kContinue;
    }
    if (status == "waiting") {
      auto st = c.find("state");
      resumed = st != c.end() ? &*st : &NullJson();
    } else if (status != "skipped") {
      result_.outcome = RunOutcome::kFailed;
      result_.error = absl::FailedPreconditionError(
          absl::StrCat("checkpoint of run \"", key, "\" has an unknown status"));
      result_.failed_node_id = node.id;
      result_.failed_run_key = key;
      return Flow::kStop;
    }
  }

  observer_.OnNodeStarted(run);
  const absl::Time started = clock_.Now();
  Json items = Json::array();
  for (const Json& group : groups) {
    for (const Json& item : group) items.push_back(item);
  }

  if (node.disabled) {
    NodeResult passthrough;
    passthrough.outputs[node.node_type->FallbackOutput(node.outputs)] = std::move(items);
    passthrough.metadata["disabled"] = true;
    absl::StatusOr<Json> output = Standardize(node, passthrough);
    if (!output.ok()) return Fail(run, output.status(), clock_.Now() - started);
    return Complete(run, *std::move(output), Json(), started);
  }

  absl::StatusOr<NodeResult> result;
  for (int attempt = 1;; ++attempt) {
    const absl::Time attempt_start = clock_.Now();
    const absl::Time deadline = std::min(req_.deadline, attempt_start + node.settings.timeout);
    NodeContextImpl ctx(*this, node, key, items, groups, deadline, iteration, resumed);
    try {
      result = node.node_type->Execute(ctx);
    } catch (const std::exception& e) {
      result = absl::InternalError(absl::StrCat(node.Label(), ": unexpected error: ", e.what()));
    } catch (...) {
      result = absl::InternalError(absl::StrCat(node.Label(), ": unexpected error"));
    }
    if (result.ok()) break;
    const absl::Status& error = result.status();
    if (token_.cancelled() || error.code() == absl::StatusCode::kCancelled) {
      return Interrupted(&run);
    }
    if (clock_.Now() >= req_.deadline) return Interrupted(&run);
    if (node.settings.retry_on_fail && IsTransient(error) && attempt <= node.settings.max_retries) {
      observer_.OnNodeRetrying(run, attempt + 1, node.settings.retry_delay, error);
      if (token_.WaitFor(node.settings.retry_delay)) return Interrupted(&run);
      continue;
    }
    break;
  }

  NodeResult node_result;
  if (!result.ok()) {
    if (!node.settings.continue_on_fail) return Fail(run, result.status(), clock_.Now() - started);
    node_result.outputs[node.node_type->FallbackOutput(node.outputs)] =
        Json::array({MakeItem(ErrorItemJson(result.status()))});
  } else {
    node_result = *std::move(result);
  }

  if (node_result.suspend) {
    Json checkpoint = {{"v", kCheckpointVersion},
                       {"status", "waiting"},
                       {"resumeAt", FormatIsoTime(node_result.resume_at)},
                       {"resumeAtMs", absl::ToUnixMillis(node_result.resume_at)}};
    checkpoint["state"] = node_result.state;
    absl::Status st = observer_.OnNodeSuspended(run, checkpoint, node_result.resume_at);
    if (!st.ok()) {
      result_.outcome = RunOutcome::kStopped;
      result_.error = st;
      return Flow::kStop;
    }
    result_.outcome = RunOutcome::kSuspended;
    result_.resume_at = node_result.resume_at;
    result_.failed_node_id = node.id;
    result_.failed_run_key = key;
    return Flow::kStop;
  }

  absl::StatusOr<Json> output = Standardize(node, node_result);
  if (!output.ok()) return Fail(run, output.status(), clock_.Now() - started);
  return Complete(run, *std::move(output), node_result.state, started);
}

}  // namespace

absl::string_view RunOutcomeName(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kCompleted:
      return "completed";
    case RunOutcome::kFailed:
      return "failed";
    case RunOutcome::kCancelled:
      return "cancelled";
    case RunOutcome::kTimedOut:
      return "timed_out";
    case RunOutcome::kSuspended:
      return "suspended";
    case RunOutcome::kStopped:
      return "stopped";
  }
  return "unknown";
}

Json NodeErrorJson(const Node& node, const absl::Status& error) {
  return {{"message", std::string(error.message())},
          {"code", absl::StatusCodeToString(error.code())},
          {"nodeId", node.id},
          {"nodeName", node.name},
          {"nodeType", node.type},
          {"transient", IsTransient(error)}};
}

absl::Time ExecutionDeadline(const Workflow& workflow, absl::Time started_at,
                             absl::Duration job_timeout) {
  return started_at + std::min(job_timeout, workflow.execution_timeout());
}

RunResult Engine::Run(const RunRequest& request, ExecutionObserver& observer) const {
  if (request.workflow == nullptr) {
    RunResult r;
    r.outcome = RunOutcome::kFailed;
    r.error = absl::InvalidArgumentError("RunRequest.workflow is null");
    return r;
  }
  RunState state(options_, request, observer);
  return state.Run();
}

}  // namespace ndx::engine
