#include "libs/engine/workflow.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/engine/expression.h"
#include "libs/engine/node_type.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

// Size limits of one workflow, checked before anything else (README "How an execution runs";
// services/queue/job_payload.cc checks the same numbers before it builds the job).
constexpr int kMaxWorkflowNodes = 5000;
constexpr int kMaxWorkflowConnections = 50000;

absl::StatusOr<std::string> RequiredString(const Json& obj, const char* field,
                                           absl::string_view where) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    return Invalid(absl::StrCat(where, ": missing \"", field, "\""));
  }
  if (it->is_string()) {
    if (it->get_ref<const std::string&>().empty()) {
      return Invalid(absl::StrCat(where, ": \"", field, "\" is empty"));
    }
    return it->get<std::string>();
  }
  if (it->is_number_integer()) return ValueToText(*it);
  return Invalid(absl::StrCat(where, ": \"", field, "\" must be a string"));
}

std::string OptionalString(const Json& obj, const char* field, absl::string_view fallback) {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return std::string(fallback);
  }
  return it->get<std::string>();
}

absl::StatusOr<NodeSettings> ParseSettings(const Json& settings, absl::string_view where) {
  NodeSettings s;
  if (settings.is_null()) return s;
  if (!settings.is_object())
    return Invalid(absl::StrCat(where, ": \"settings\" must be an object"));
  auto get = [&](const char* key) -> const Json& {
    static const Json kNull;
    auto it = settings.find(key);
    return it == settings.end() ? kNull : *it;
  };
  auto wrap = [&](absl::Status st) {
    return Invalid(absl::StrCat(where, ": settings: ", st.message()));
  };
  absl::StatusOr<bool> b = BoolParam(get("continueOnFail"), "continueOnFail", false);
  if (!b.ok()) return wrap(b.status());
  s.continue_on_fail = *b;
  b = BoolParam(get("alwaysOutputData"), "alwaysOutputData", false);
  if (!b.ok()) return wrap(b.status());
  s.always_output_data = *b;
  b = BoolParam(get("retryOnFail"), "retryOnFail", false);
  if (!b.ok()) return wrap(b.status());
  s.retry_on_fail = *b;
  absl::StatusOr<double> n = NumberParam(get("maxRetries"), "maxRetries", 3);
  if (!n.ok()) return wrap(n.status());
  if (*n < 0 || *n > 100) return wrap(Invalid("maxRetries must be between 0 and 100"));
  s.max_retries = static_cast<int>(*n);
  n = NumberParam(get("retryDelay"), "retryDelay", 1000);
  if (!n.ok()) return wrap(n.status());
  if (*n < 0) return wrap(Invalid("retryDelay must not be negative"));
  s.retry_delay = absl::Milliseconds(*n);
  n = NumberParam(get("timeout"), "timeout", 0);
  if (!n.ok()) return wrap(n.status());
  if (*n < 0) return wrap(Invalid("timeout must not be negative"));
  s.timeout = *n > 0 ? absl::Milliseconds(*n) : absl::InfiniteDuration();
  return s;
}

}  // namespace

std::string Node::Label() const { return absl::StrCat("node \"", name, "\" (", id, ")"); }

const Node* Workflow::FindNode(absl::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &nodes_[it->second];
}

const Node* Workflow::FindNodeByIdOrName(absl::string_view id_or_name) const {
  if (const Node* n = FindNode(id_or_name); n != nullptr) return n;
  auto it = by_name_.find(id_or_name);
  return it == by_name_.end() ? nullptr : &nodes_[it->second];
}

const Node* Workflow::DefaultTrigger() const {
  for (const Node& n : nodes_) {
    if (n.node_type->is_trigger()) return &n;
  }
  return nullptr;
}

const Scope& Workflow::LoopBody(int loop) const { return loop_bodies_.at(loop); }

namespace {

// Reverse postorder of a depth-first walk from `start` over non-back edges to nodes with
// loop_owner == owner, children visited in reverse connection order: a topological order in
// which, after a node, its first connection's subgraph comes first (NodeDrop's depth-first
// feel), and a join comes after all of its in-scope inputs.
Scope BuildScope(const std::vector<Node>& nodes, const std::vector<Connection>& connections,
                 int start, int owner, int feeder) {
  Scope scope;
  scope.feeder = feeder;
  scope.in_scope.assign(nodes.size(), 0);
  std::vector<char> visited(nodes.size(), 0);
  std::vector<int> post;
  std::function<void(int)> visit = [&](int n) {
    visited[n] = 1;
    const std::vector<int>& out = nodes[n].outgoing;
    for (auto it = out.rbegin(); it != out.rend(); ++it) {
      const Connection& c = connections[*it];
      if (c.back_edge || visited[c.target] || nodes[c.target].loop_owner != owner) continue;
      visit(c.target);
    }
    post.push_back(n);
  };
  visit(start);
  std::reverse(post.begin(), post.end());
  for (int n : post) {
    if (n == feeder) continue;
    scope.order.push_back(n);
    scope.in_scope[n] = 1;
  }
  return scope;
}

}  // namespace

std::shared_ptr<const Scope> Workflow::TopScope(int trigger) const {
  auto it = trigger_scopes_.find(trigger);
  if (it != trigger_scopes_.end()) return it->second;
  return std::make_shared<const Scope>(
      BuildScope(nodes_, connections_, trigger, nodes_[trigger].loop_owner, -1));
}

absl::StatusOr<Workflow> ParseWorkflow(const Json& input, const NodeRegistry& registry) {
  const Json* root = &input;
  if (root->is_object() && !root->contains("nodes") && root->contains("workflow") &&
      (*root)["workflow"].is_object()) {
    root = &(*root)["workflow"];
  }
  if (!root->is_object()) return Invalid("workflow must be a JSON object");
  auto nodes_it = root->find("nodes");
  if (nodes_it == root->end() || !nodes_it->is_array()) {
    return Invalid("workflow: \"nodes\" must be an array");
  }
  // Before any per-node work: validation costs up to nodes x (Loop and trigger nodes) in time
  // and memory, and recursion as deep as the longest chain.
  if (nodes_it->size() > static_cast<size_t>(kMaxWorkflowNodes)) {
    return Invalid(absl::StrCat("workflow: ", nodes_it->size(), " nodes; at most ",
                                kMaxWorkflowNodes, " are allowed"));
  }
  if (auto it = root->find("connections");
      it != root->end() && it->is_array() &&
      it->size() > static_cast<size_t>(kMaxWorkflowConnections)) {
    return Invalid(absl::StrCat("workflow: ", it->size(), " connections; at most ",
                                kMaxWorkflowConnections, " are allowed"));
  }
  Workflow wf;
  if (auto it = root->find("id"); it != root->end() && (it->is_string() || it->is_number())) {
    wf.id_ = ValueToText(*it);
  }
  if (auto it = root->find("settings"); it != root->end() && !it->is_null()) {
    if (!it->is_object()) return Invalid("workflow: \"settings\" must be an object");
    wf.settings_ = *it;
    if (auto t = it->find("executionTimeout"); t != it->end() && !t->is_null()) {
      absl::StatusOr<double> ms = NumberParam(*t, "executionTimeout", 0);
      if (!ms.ok()) return Invalid(absl::StrCat("workflow settings: ", ms.status().message()));
      if (*ms > 0) wf.execution_timeout_ = absl::Milliseconds(*ms);
    }
  }

  // Nodes.
  int index = 0;
  for (const Json& jn : *nodes_it) {
    const std::string where = absl::StrCat("nodes[", index, "]");
    if (!jn.is_object()) return Invalid(absl::StrCat(where, ": must be an object"));
    Node node;
    node.index = index;
    absl::StatusOr<std::string> id = RequiredString(jn, "id", where);
    if (!id.ok()) return id.status();
    node.id = *id;
    absl::StatusOr<std::string> type =
        RequiredString(jn, "type", absl::StrCat(where, " (", node.id, ")"));
    if (!type.ok()) return type.status();
    node.type = *type;
    node.name = OptionalString(jn, "name", node.type);
    if (wf.by_id_.contains(node.id)) {
      return Invalid(absl::StrCat("duplicate node id \"", node.id, "\" (", where, ", named \"",
                                  node.name, "\")"));
    }
    node.node_type = registry.Find(node.type);
    if (node.node_type == nullptr) {
      return Invalid(absl::StrCat(node.Label(), ": unknown node type \"", node.type, "\""));
    }
    if (auto it = jn.find("parameters"); it != jn.end() && !it->is_null()) {
      if (!it->is_object())
        return Invalid(absl::StrCat(node.Label(), ": \"parameters\" must be an object"));
      node.parameters = *it;
    } else {
      node.parameters = Json::object();
    }
    if (auto it = jn.find("disabled"); it != jn.end() && !it->is_null()) {
      if (!it->is_boolean())
        return Invalid(absl::StrCat(node.Label(), ": \"disabled\" must be a boolean"));
      node.disabled = it->get<bool>();
    }
    absl::StatusOr<NodeSettings> settings =
        ParseSettings(jn.contains("settings") ? jn["settings"] : Json(), node.Label());
    if (!settings.ok()) return settings.status();
    node.settings = *settings;
    if (absl::Status st = node.node_type->Validate(node.parameters); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(node.Label(), ": ", st.message()));
    }
    node.outputs = node.node_type->Outputs(node.parameters);
    wf.by_id_.emplace(node.id, index);
    wf.by_name_.try_emplace(node.name, index);
    wf.nodes_.push_back(std::move(node));
    ++index;
  }

  // Connections.
  auto conns_it = root->find("connections");
  if (conns_it != root->end() && !conns_it->is_null() && !conns_it->is_array()) {
    return Invalid("workflow: \"connections\" must be a flat array (NodeDrop format)");
  }
  absl::flat_hash_set<std::string> seen_edges;
  if (conns_it != root->end() && conns_it->is_array()) {
    int ci = 0;
    for (const Json& jc : *conns_it) {
      std::string label = absl::StrCat("connections[", ci, "]");
      ++ci;
      if (!jc.is_object()) return Invalid(absl::StrCat(label, ": must be an object"));
      Connection c;
      c.id = OptionalString(jc, "id", "");
      if (!c.id.empty()) label = absl::StrCat("connection \"", c.id, "\"");
      absl::StatusOr<std::string> source = RequiredString(jc, "sourceNodeId", label);
      if (!source.ok()) return source.status();
      absl::StatusOr<std::string> target = RequiredString(jc, "targetNodeId", label);
      if (!target.ok()) return target.status();
      const Node* src = wf.FindNode(*source);
      if (src == nullptr) {
        return Invalid(absl::StrCat(label, ": source node \"", *source, "\" does not exist"));
      }
      const Node* dst = wf.FindNode(*target);
      if (dst == nullptr) {
        return Invalid(absl::StrCat(label, ": target node \"", *target, "\" does not exist"));
      }
      c.source = src->index;
      c.target = dst->index;
      c.source_output = OptionalString(jc, "sourceOutput", "main");
      c.target_input = OptionalString(jc, "targetInput", "main");
      if (std::find(src->outputs.begin(), src->outputs.end(), c.source_output) ==
          src->outputs.end()) {
        return Invalid(absl::StrCat(label, ": ", src->Label(), " has no output \"", c.source_output,
                                    "\" (outputs: ", absl::StrJoin(src->outputs, ", "), ")"));
      }
      if (c.target_input != "main") {
        return Invalid(absl::StrCat(label, ": target input \"", c.target_input, "\" of ",
                                    dst->Label(), " is not supported (only \"main\")"));
      }
      if (dst->node_type->is_trigger()) {
        return Invalid(absl::StrCat(label, ": ", dst->Label(), " is a trigger and has no inputs"));
      }
      if (c.source == c.target && !src->node_type->is_loop()) {
        return Invalid(absl::StrCat(label, ": ", src->Label(), " is connected to itself (cycle)"));
      }
      std::string edge_key =
          absl::StrCat(c.source, "\x1f", c.source_output, "\x1f", c.target, "\x1f", c.target_input);
      if (!seen_edges.insert(edge_key).second) continue;  // identical duplicate: merged
      c.index = static_cast<int>(wf.connections_.size());
      if (c.id.empty()) c.id = absl::StrCat("#", c.index);
      wf.nodes_[c.source].outgoing.push_back(c.index);
      wf.nodes_[c.target].incoming.push_back(c.index);
      wf.connections_.push_back(std::move(c));
    }
  }

  // Loop bodies: everything reachable from a Loop's `loop` output without passing through the
  // Loop again. Edges from the body back into its Loop are back edges (ignored by scheduling).
  std::vector<Node>& nodes = wf.nodes_;
  std::vector<Connection>& conns = wf.connections_;
  // Each body is kept as its member list, and membership is marked in one scratch array that is
  // cleared member by member: the cost is the sum of the body sizes, not nodes x Loop nodes (a
  // workflow of thousands of Loop nodes must not cost gigabytes or minutes to validate).
  absl::flat_hash_map<int, std::vector<int>> bodies;
  std::vector<char> in_body(nodes.size(), 0);
  for (const Node& loop : nodes) {
    if (!loop.node_type->is_loop()) continue;
    std::vector<int> members;
    std::vector<int> stack;
    for (int ci : loop.outgoing) {
      const Connection& c = conns[ci];
      if (c.source_output == "loop" && c.target != loop.index && !in_body[c.target]) {
        in_body[c.target] = 1;
        members.push_back(c.target);
        stack.push_back(c.target);
      }
    }
    while (!stack.empty()) {
      int n = stack.back();
      stack.pop_back();
      for (int ci : nodes[n].outgoing) {
        int t = conns[ci].target;
        if (t != loop.index && !in_body[t]) {
          in_body[t] = 1;
          members.push_back(t);
          stack.push_back(t);
        }
      }
    }
    for (int ci : loop.incoming) {
      if (in_body[conns[ci].source]) conns[ci].back_edge = true;
    }
    std::sort(members.begin(), members.end());  // report the first offending node by index
    absl::Status outside_input = absl::OkStatus();
    for (int n : members) {
      for (int ci : nodes[n].incoming) {
        const Connection& c = conns[ci];
        if (in_body[c.source] || (c.source == loop.index && c.source_output == "loop")) continue;
        outside_input = Invalid(absl::StrCat(
            "connection \"", c.id, "\": ", nodes[n].Label(), " is inside the body of Loop ",
            loop.Label(), " but has an input from ", nodes[c.source].Label(),
            " outside it (a Loop body may only be fed by its Loop)"));
        break;
      }
      if (!outside_input.ok()) break;
    }
    for (int n : members) in_body[n] = 0;
    if (!outside_input.ok()) return outside_input;
    bodies.emplace(loop.index, std::move(members));
  }
  // Innermost owner: the Loop with the smallest body that holds the node.
  for (const auto& [loop, members] : bodies) {
    for (int n : members) {
      Node& node = nodes[n];
      if (node.loop_owner == -1 || members.size() < bodies.at(node.loop_owner).size()) {
        node.loop_owner = loop;
      }
    }
  }

  // Cycles outside Loop bodies (back edges excluded).
  {
    std::vector<int> color(nodes.size(), 0);  // 0 new, 1 on stack, 2 done
    int cycle_node = -1;
    std::function<bool(int)> dfs = [&](int n) {
      color[n] = 1;
      for (int ci : nodes[n].outgoing) {
        const Connection& c = conns[ci];
        if (c.back_edge) continue;
        if (color[c.target] == 1) {
          cycle_node = c.target;
          return true;
        }
        if (color[c.target] == 0 && dfs(c.target)) return true;
      }
      color[n] = 2;
      return false;
    };
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (color[n] == 0 && dfs(static_cast<int>(n))) {
        return Invalid(absl::StrCat("cycle detected through ", nodes[cycle_node].Label(),
                                    " (cycles are only allowed as a Loop body's edge back into "
                                    "its Loop node)"));
      }
    }
  }

  // Precomputed scopes and templates.
  for (const auto& [loop, members] : bodies) {
    wf.loop_bodies_.emplace(loop, BuildScope(nodes, conns, loop, loop, loop));
  }
  for (const Node& n : nodes) {
    if (n.node_type->is_trigger()) {
      wf.trigger_scopes_.emplace(
          n.index, std::make_shared<const Scope>(BuildScope(nodes, conns, n.index, -1, -1)));
    }
    wf.templates_.push_back(TemplateCache::Build(n.parameters));
  }
  return wf;
}

}  // namespace ndx::engine
