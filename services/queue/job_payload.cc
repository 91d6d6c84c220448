#include "services/queue/job_payload.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json_depth.h"
#include "libs/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace ndx::queue {
namespace {

using Json = nlohmann::ordered_json;

// The engine's size limits (libs/engine/workflow.cc), checked here before any per-node work: a
// 4 MB request of 100,000 nodes cost seconds of JSON building before the validator refused it.
constexpr int kMaxNodes = 5000;
constexpr int kMaxConnections = 50000;

// `what` names the field in errors; it is called only when there is one.
template <typename What>
absl::StatusOr<Json> ParseJson(const std::string& text, const What& what) {
  if (text.empty()) return Json::object();
  if (absl::Status s = common::CheckJsonDepth(text, "json"); !s.ok()) {
    NDX_RETURN_IF_ERROR(common::CheckJsonDepth(text, what()));
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what(), " is not valid JSON"));
  }
  return j;
}

std::string NodeLabel(const v1::Node& node, int index) {
  if (!node.name().empty()) return absl::StrCat("node \"", node.name(), "\" (", node.id(), ")");
  if (!node.id().empty()) return absl::StrCat("node ", node.id());
  return absl::StrCat("nodes[", index, "]");
}

// NodeDrop marks trigger nodes by type; these are the trigger types ndx knows.
bool IsTriggerType(absl::string_view type) {
  return absl::EndsWith(type, "-trigger") || type == "workflow-called" || type == "manual";
}

}  // namespace

absl::StatusOr<JobPayload> BuildJobPayload(const v1::ExecuteWorkflowRequest& request,
                                           const std::string& queue,
                                           const WorkflowValidator& validator) {
  if (!request.has_workflow()) {
    return absl::InvalidArgumentError(
        request.workflow_id().empty()
            ? "workflow is required"
            : "workflow is required: this server cannot load workflows by workflow_id (it has "
              "no access to NodeDrop's workflows table)");
  }
  const v1::Workflow& wf = request.workflow();
  if (wf.nodes_size() == 0) return absl::InvalidArgumentError("workflow.nodes is empty");
  if (wf.nodes_size() > kMaxNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("workflow: ", wf.nodes_size(), " nodes; at most ", kMaxNodes, " are allowed"));
  }
  if (wf.connections_size() > kMaxConnections) {
    return absl::InvalidArgumentError(absl::StrCat("workflow: ", wf.connections_size(),
                                                   " connections; at most ", kMaxConnections,
                                                   " are allowed"));
  }
  // The document is built member by member (moves, no initializer-list copies), and the labels
  // that name a node or connection in errors are formatted only once something is wrong: this
  // runs on every ExecuteWorkflow.
  Json nodes = Json::array();
  nodes.get_ref<Json::array_t&>().reserve(static_cast<size_t>(wf.nodes_size()));
  absl::flat_hash_set<absl::string_view> ids;
  ids.reserve(static_cast<size_t>(wf.nodes_size()));
  std::string first_trigger;
  for (int i = 0; i < wf.nodes_size(); ++i) {
    const v1::Node& n = wf.nodes(i);
    if (n.id().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(n, i), ": id is empty"));
    }
    if (!ids.insert(n.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(n, i), ": duplicate node id \"", n.id(), "\""));
    }
    if (n.type().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(NodeLabel(n, i), ": type is empty"));
    }
    absl::StatusOr<Json> params = ParseJson(
        n.parameters_json(), [&] { return absl::StrCat(NodeLabel(n, i), ": parameters_json"); });
    if (!params.ok()) return params.status();
    if (!params->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeLabel(n, i), ": parameters_json must be a JSON object"));
    }
    if (first_trigger.empty() && IsTriggerType(n.type())) first_trigger = n.id();
    Json settings = Json::object();
    const v1::NodeSettings& s = n.settings();
    if (s.continue_on_fail()) settings["continueOnFail"] = true;
    if (s.always_output_data()) settings["alwaysOutputData"] = true;
    if (s.retry_on_fail()) settings["retryOnFail"] = true;
    if (s.has_max_retries()) settings["maxRetries"] = s.max_retries();
    if (s.has_retry_delay_ms()) settings["retryDelay"] = s.retry_delay_ms();
    if (s.has_timeout_ms()) settings["timeout"] = s.timeout_ms();
    Json node = Json::object();
    Json::object_t& members = node.get_ref<Json::object_t&>();
    members.reserve(6);
    members.emplace_back("id", n.id());
    members.emplace_back("name", n.name().empty() ? n.type() : n.name());
    members.emplace_back("type", n.type());
    members.emplace_back("parameters", *std::move(params));
    members.emplace_back("disabled", n.disabled());
    members.emplace_back("settings", std::move(settings));
    nodes.get_ref<Json::array_t&>().push_back(std::move(node));
  }
  Json connections = Json::array();
  connections.get_ref<Json::array_t&>().reserve(static_cast<size_t>(wf.connections_size()));
  for (int i = 0; i < wf.connections_size(); ++i) {
    const v1::Connection& c = wf.connections(i);
    for (const std::string* end : {&c.source_node_id(), &c.target_node_id()}) {
      if (!ids.contains(*end)) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.id().empty() ? absl::StrCat("connections[", i, "]")
                                        : absl::StrCat("connection ", c.id()),
                         ": node \"", *end, "\" does not exist in the workflow"));
      }
    }
    Json connection = Json::object();
    Json::object_t& members = connection.get_ref<Json::object_t&>();
    members.reserve(5);
    members.emplace_back("id", c.id());
    members.emplace_back("sourceNodeId", c.source_node_id());
    members.emplace_back("sourceOutput", c.source_output().empty() ? "main" : c.source_output());
    members.emplace_back("targetNodeId", c.target_node_id());
    members.emplace_back("targetInput", c.target_input().empty() ? "main" : c.target_input());
    connections.get_ref<Json::array_t&>().push_back(std::move(connection));
  }
  Json settings = Json::object();
  if (wf.settings().execution_timeout_ms() > 0) {
    settings["executionTimeout"] = wf.settings().execution_timeout_ms();
  }
  if (wf.settings().has_save_execution_to_database()) {
    settings["saveExecutionToDatabase"] = wf.settings().save_execution_to_database();
  }
  if (!wf.settings().timezone().empty()) settings["timezone"] = wf.settings().timezone();
  Json workflow = {{"id", wf.id().empty() ? request.workflow_id() : wf.id()},
                   {"name", wf.name()},
                   {"nodes", std::move(nodes)},
                   {"connections", std::move(connections)},
                   {"settings", std::move(settings)}};

  std::string trigger = request.trigger_node_id();
  if (!trigger.empty() && !ids.contains(trigger)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trigger_node_id: node \"", trigger, "\" does not exist in the workflow"));
  }
  if (trigger.empty()) trigger = first_trigger.empty() ? wf.nodes(0).id() : first_trigger;
  NDX_ASSIGN_OR_RETURN(Json trigger_data, ParseJson(request.trigger_data_json(), [] {
                         return std::string("trigger_data_json");
                       }));
  if (validator) NDX_RETURN_IF_ERROR(validator(workflow));
  // The workflow is serialized once: it is the snapshot, and the payload's last member.
  std::string workflow_json = workflow.dump(-1, ' ', false, Json::error_handler_t::replace);
  const bool save =
      !wf.settings().has_save_execution_to_database() || wf.settings().save_execution_to_database();

  Json head = Json::object();
  Json::object_t& members = head.get_ref<Json::object_t&>();
  members.reserve(10);
  members.emplace_back("v", 1);
  members.emplace_back("workflowId", std::move(workflow["id"]));
  members.emplace_back("workflowName", wf.name());
  members.emplace_back("workspaceId", request.workspace_id());
  members.emplace_back("userId", request.user_id());
  members.emplace_back("requestId", request.request_id());
  members.emplace_back("triggerNodeId", trigger);
  members.emplace_back("triggerData", std::move(trigger_data));
  members.emplace_back("singleNodeMode", request.single_node_mode());
  members.emplace_back("queue", queue);
  // {head..., "workflow": <workflow_json>}: the same bytes as dumping one document holding both.
  std::string json = head.dump(-1, ' ', false, Json::error_handler_t::replace);
  json.pop_back();  // the closing brace
  json.reserve(json.size() + workflow_json.size() + 13);
  absl::StrAppend(&json, ",\"workflow\":", workflow_json, "}");
  return JobPayload{std::move(json), trigger, std::move(workflow_json), save};
}

}  // namespace ndx::queue
