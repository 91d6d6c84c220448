// File: workflow.h
//
// The parsed, validated form of a NodeDrop workflow (reference/nodedrop-contracts.md §1): nodes,
// the flat connection list and settings, plus everything the engine precomputes once so that a
// cached Workflow can be run many times cheaply (adjacency lists, Loop bodies, a stable execution
// order per trigger, compiled `{{ }}` templates).
//
//   NodeRegistry registry;
//   RegisterBuiltinNodes(registry);
//   absl::StatusOr<Workflow> wf = ParseWorkflow(json, registry);   // INVALID_ARGUMENT on errors
//   Engine().Run(RunRequest{.workflow = &*wf, ...}, observer);
//
// Validation (all INVALID_ARGUMENT, the message names the node by name and id, or the
// connection by id): malformed JSON shape, duplicate node ids, unknown node types, connections to
// a missing node or a missing output, cycles outside Loop bodies, nodes inside a Loop body fed
// from outside it, bad node parameters (each NodeType validates its own). UI-only fields
// (position, icon, color, description, mockData, ...) are accepted and ignored.
//
// A Workflow is immutable after parsing and safe to share between threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/engine/js/js_sandbox.h"  // Json

namespace ndx::engine {

class NodeType;
class NodeRegistry;
class TemplateCache;  // expression.h (internal)

// Per-node settings (NodeDrop's "Settings" tab, backend/src/types/settings.types.ts).
struct NodeSettings {
  bool continue_on_fail = false;    // a failure becomes an error item and the node completes
  bool always_output_data = false;  // a node that outputs no item outputs one empty item
  bool retry_on_fail = false;       // retry transient failures (errors.h) of this node
  int max_retries = 3;              // retries after the first attempt
  absl::Duration retry_delay = absl::Seconds(1);
  absl::Duration timeout = absl::InfiniteDuration();  // per attempt; infinite when unset or 0
};

// One edge of the flat connection list. `source`/`target` are node indexes.
struct Connection {
  int index = -1;  // position in Workflow::connections()
  std::string id;
  int source = -1;
  std::string source_output;  // "main", "true"/"false", "output0".., "loop"/"done"
  int target = -1;
  std::string target_input;  // "main" unless given
  bool back_edge = false;    // from a Loop body back into its Loop node: ignored by scheduling
};

struct Node {
  int index = -1;  // position in Workflow::nodes()
  std::string id;
  std::string name;  // display name; "" in the source falls back to the type
  std::string type;
  const NodeType* node_type = nullptr;  // from the registry; never null after parsing
  Json parameters;                      // as given (expressions are resolved per run)
  bool disabled = false;
  NodeSettings settings;
  std::vector<std::string> outputs;  // declared output names, e.g. {"true", "false"}
  std::vector<int> incoming;         // connection indexes, in connection array order
  std::vector<int> outgoing;         // connection indexes, in connection array order
  int loop_owner = -1;               // the innermost Loop node whose body holds this node; -1: none

  // "Name" (id): how errors name a node.
  std::string Label() const;
};

// An execution scope: the nodes one pass of the scheduler runs, in run order. The top-level
// scope of a trigger holds what it reaches outside Loop bodies; a Loop body scope holds the
// nodes directly inside one Loop (nested Loop bodies are their own scopes).
struct Scope {
  int feeder = -1;             // the Loop node whose `loop` output feeds this body; -1 at top level
  std::vector<int> order;      // stable topological order (see engine.h "Order")
  std::vector<char> in_scope;  // by node index
};

class Workflow {
 public:
  const std::string& id() const { return id_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<Connection>& connections() const { return connections_; }
  // The workflow's "settings" object as given ({} when absent).
  const Json& settings() const { return settings_; }
  // settings.executionTimeout (milliseconds) or InfiniteDuration() when absent or <= 0. The
  // caller turns it into RunRequest::deadline (see ExecutionDeadline in engine.h).
  absl::Duration execution_timeout() const { return execution_timeout_; }

  // By id; nullptr if absent.
  const Node* FindNode(absl::string_view id) const;
  // By id first, then by name (the `$node["..."]` lookup); nullptr if absent.
  const Node* FindNodeByIdOrName(absl::string_view id_or_name) const;
  // The first trigger node in node array order; nullptr if the workflow has none.
  const Node* DefaultTrigger() const;

  // The top-level scope reached from `trigger` (precomputed for trigger nodes, built on the fly
  // for other start nodes). REQUIRES: `trigger` is a node index.
  std::shared_ptr<const Scope> TopScope(int trigger) const;
  // The body scope of Loop node `loop`. REQUIRES: nodes()[loop] is a Loop node.
  const Scope& LoopBody(int loop) const;

  // Compiled templates of the node's parameters (internal to the engine).
  const TemplateCache& templates(int node) const { return *templates_[node]; }

 private:
  friend absl::StatusOr<Workflow> ParseWorkflow(const Json&, const NodeRegistry&);

  std::string id_;
  std::vector<Node> nodes_;
  std::vector<Connection> connections_;
  Json settings_ = Json::object();
  absl::Duration execution_timeout_ = absl::InfiniteDuration();
  absl::flat_hash_map<std::string, int> by_id_;
  absl::flat_hash_map<std::string, int> by_name_;  // first node with that name
  absl::flat_hash_map<int, std::shared_ptr<const Scope>> trigger_scopes_;
  absl::flat_hash_map<int, Scope> loop_bodies_;
  std::vector<std::shared_ptr<const TemplateCache>> templates_;
};

// Parses and validates a NodeDrop workflow: either the workflow object itself
// ({"id"?, "nodes": [...], "connections": [...], "settings"?}) or the editor's export wrapper
// ({"workflow": {...}}). Identical duplicate connections (same source, output, target, input)
// are merged into one. Returns INVALID_ARGUMENT naming the offending node or connection.
absl::StatusOr<Workflow> ParseWorkflow(const Json& json, const NodeRegistry& registry);

}  // namespace ndx::engine
