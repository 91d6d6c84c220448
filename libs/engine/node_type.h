// File: node_type.h
//
// NodeType: what one kind of node (`set`, `ifElse`, `http-request`, ...) declares and does, and
// NodeRegistry, the table ParseWorkflow looks types up in. Built-in types live one per file in
// libs/engine/nodes/ and are added by RegisterBuiltinNodes() (nodes/builtin_nodes.h), the one
// place to add a node type.
//
//   class NoopNode final : public NodeType {
//     absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
//       return NodeResult::Main(ctx.items());
//     }
//   };
//   registry.Register("noop", std::make_unique<NoopNode>());
//
// Items are {"json": {...}}; a node returns its items per output name and the engine builds
// NodeDrop's standardized output {main, branches?, metadata} from them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/engine/cancellation.h"
#include "libs/engine/js/js_sandbox.h"

namespace ndx::engine {

class HttpClient;
struct Node;

// Who runs the workflow: `$execution` in expressions, the http-request Idempotency-Key.
struct ExecutionInfo {
  std::string execution_id;
  std::string workflow_id;
  std::string mode = "manual";  // NodeDrop's $execution.mode
};

// What a node run produced.
struct NodeResult {
  // Output name -> array of items, e.g. {"true": [...], "false": [...]}. Names must be among the
  // node's declared outputs; a declared output that is missing counts as empty.
  Json outputs = Json::object();
  // Fields added to the standardized output's "metadata" (e.g. "console" for Code nodes).
  Json metadata = Json::object();
  // Engine state kept in the run's checkpoint (e.g. the Loop node's cursor); null for none.
  Json state;
  // Set by a node that must wait past RunRequest's inline-wait threshold (the Wait node): the
  // engine checkpoints the run as waiting and returns RunOutcome::kSuspended. On resume the node
  // runs again with NodeContext::resumed_state() = `state`.
  bool suspend = false;
  absl::Time resume_at = absl::InfinitePast();

  // A result with `items` (a JSON array of items) on the "main" output.
  static NodeResult Main(Json items);
};

// Everything a running node may use. Implemented by the engine; valid only during Execute().
// Not thread-safe (one node runs at a time per execution).
class NodeContext {
 public:
  virtual ~NodeContext() = default;

  virtual const Node& node() const = 0;
  // The run key (engine.h "Run keys").
  virtual const std::string& run_key() const = 0;
  // Input items, all connections concatenated in connection order (a JSON array).
  virtual const Json& items() const = 0;
  // Input per connection: an array with one array of items per incoming connection, in
  // connection array order, empty arrays for pruned connections (NodeDrop's `main` for Merge).
  virtual const Json& input_per_connection() const = 0;

  // The parameter `name` with `{{ }}` expressions resolved against input item `item_index`
  // ($json = that item's json; -1 or an index past the end: $json = {}). Missing: null.
  // Errors: those of expressions, with the node and the expression named.
  virtual absl::StatusOr<Json> Param(absl::string_view name, int item_index) const = 0;
  // Resolves any value taken from the parameters (e.g. one condition row) the same way.
  virtual absl::StatusOr<Json> Resolve(const Json& raw, int item_index) const = 0;
  // The parameter as written, without expression resolution (e.g. Code's `code`). Missing: null.
  virtual const Json& RawParam(absl::string_view name) const = 0;

  virtual const ExecutionInfo& execution() const = 0;
  // The data the execution was triggered with (null when none).
  virtual const Json& trigger_data() const = 0;
  // Never null; checked by the engine between nodes, passed into HTTP, JavaScript and waits.
  virtual const CancellationToken& cancel() const = 0;
  // The earliest of the node's timeout (per attempt) and the execution deadline.
  virtual absl::Time deadline() const = 0;
  virtual common::Clock& clock() const = 0;
  // May be null (the caller has no JavaScript); Code nodes then fail with FAILED_PRECONDITION.
  virtual JsSandbox* js() const = 0;
  virtual const JsLimits& js_limits() const = 0;
  // May be null (the caller has no HTTP); http-request then fails with FAILED_PRECONDITION.
  virtual const HttpClient* http() const = 0;
  virtual size_t max_http_response_bytes() const = 0;
  // Waits up to this long happen inline (sleeping on the token); longer ones suspend.
  virtual absl::Duration max_inline_wait() const = 0;
  // The standardized output of the latest completed run of the node with this id or name, or
  // nullptr.
  virtual const Json* NodeOutput(absl::string_view id_or_name) const = 0;
  // The JavaScript globals expressions see for input item `item_index`: $json, $index, $node (by
  // name and id: the first item's json, also under .json), $execution, $vars, $workflow, $now.
  virtual Json JsGlobals(int item_index) const = 0;
  // Loop nodes: the iteration this run computes (0, 1, ...). -1 for other nodes.
  virtual int loop_iteration() const = 0;
  // Non-null when this run resumes a run that returned NodeResult::suspend: its `state`.
  virtual const Json* resumed_state() const = 0;
};

// Attaches the item json that continueOnFail outputs instead of the engine's generic
// {error, errorDetails: {message, name, stack}} (e.g. http-request's {error: true, errorMessage,
// errorType, statusCode, url, method, timestamp, details}). Returns `error` with a payload.
absl::Status WithErrorItem(absl::Status error, const Json& item_json);
// The item json a continueOnFail node outputs for `error` (the attached one, else the generic).
Json ErrorItemJson(const absl::Status& error);

class NodeType {
 public:
  virtual ~NodeType() = default;

  // Trigger nodes start executions; they have no inputs and get the trigger data as their one
  // input item.
  virtual bool is_trigger() const { return false; }
  // The Loop node: the engine drives it (engine.h "Loops").
  virtual bool is_loop() const { return false; }
  // Output names for a node with these parameters (called once, at parse time).
  virtual std::vector<std::string> Outputs(const Json& parameters) const { return {"main"}; }
  // The output that gets a disabled node's pass-through items and a continueOnFail error item.
  virtual std::string FallbackOutput(const std::vector<std::string>& outputs) const {
    return outputs.empty() ? "main" : outputs.front();
  }
  // Checks the parameters at parse time; values that are expressions are checked at run time.
  // INVALID_ARGUMENT with a message naming the parameter (the caller prefixes the node).
  virtual absl::Status Validate(const Json& parameters) const { return absl::OkStatus(); }
  // Runs the node once. Error codes follow errors.h (transient: UNAVAILABLE, DEADLINE_EXCEEDED,
  // ABORTED). Must not throw.
  virtual absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const = 0;
};

// Node types by their `type` identifier. Filled once at start-up, then read-only (thread-safe for
// concurrent lookups).
class NodeRegistry {
 public:
  // REQUIRES: `type` not yet registered.
  void Register(std::string type, std::unique_ptr<NodeType> node_type);
  // nullptr if unknown.
  const NodeType* Find(absl::string_view type) const;
  std::vector<std::string> Types() const;  // sorted

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<NodeType>> types_;
};

}  // namespace ndx::engine
