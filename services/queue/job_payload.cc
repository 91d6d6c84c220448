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

absl::StatusOr<Json> ParseJson(const std::string& text, const std::string& what) {
  if (text.empty()) return Json::object();
  if (common::JsonNestingDepth(text) > common::kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is nested deeper than ", common::kMaxJsonDepth, " levels"));
  }
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
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
  Json nodes = Json::array();
  absl::flat_hash_set<std::string> ids;
  std::string first_trigger;
  for (int i = 0; i < wf.nodes_size(); ++i) {
    const v1::Node& n = wf.nodes(i);
    const std::string label = NodeLabel(n, i);
    if (n.id().empty()) return absl::InvalidArgumentError(absl::StrCat(label, ": id is empty"));
    if (!ids.insert(n.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": duplicate node id \"", n.id(), "\""));
    }
    if (n.type().empty()) return absl::InvalidArgumentError(absl::StrCat(label, ": type is empty"));
    NDX_ASSIGN_OR_RETURN(Json params,
                         ParseJson(n.parameters_json(), absl::StrCat(label, ": parameters_json")));
    if (!params.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": parameters_json must be a JSON object"));
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
    nodes.push_back(Json{{"id", n.id()},
                         {"name", n.name().empty() ? n.type() : n.name()},
                         {"type", n.type()},
                         {"parameters", std::move(params)},
                         {"disabled", n.disabled()},
                         {"settings", std::move(settings)}});
  }
  Json connections = Json::array();
  for (int i = 0; i < wf.connections_size(); ++i) {
    const v1::Connection& c = wf.connections(i);
    const std::string label =
        c.id().empty() ? absl::StrCat("connections[", i, "]") : absl::StrCat("connection ", c.id());
    for (const std::string* end : {&c.source_node_id(), &c.target_node_id()}) {
      if (!ids.contains(*end)) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, ": node \"", *end, "\" does not exist in the workflow"));
      }
    }
    connections.push_back(
        Json{{"id", c.id()},
             {"sourceNodeId", c.source_node_id()},
             {"sourceOutput", c.source_output().empty() ? "main" : c.source_output()},
             {"targetNodeId", c.target_node_id()},
             {"targetInput", c.target_input().empty() ? "main" : c.target_input()}});
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
  NDX_ASSIGN_OR_RETURN(Json trigger_data,
                       ParseJson(request.trigger_data_json(), "trigger_data_json"));
  std::string workflow_json = workflow.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (validator) NDX_RETURN_IF_ERROR(validator(workflow));
  const bool save =
      !wf.settings().has_save_execution_to_database() || wf.settings().save_execution_to_database();

  Json payload = {{"v", 1},
                  {"workflowId", workflow["id"]},
                  {"workflowName", wf.name()},
                  {"workspaceId", request.workspace_id()},
                  {"userId", request.user_id()},
                  {"requestId", request.request_id()},
                  {"triggerNodeId", trigger},
                  {"triggerData", std::move(trigger_data)},
                  {"singleNodeMode", request.single_node_mode()},
                  {"queue", queue},
                  {"workflow", std::move(workflow)}};
  return JobPayload{payload.dump(-1, ' ', false, Json::error_handler_t::replace), trigger,
                    std::move(workflow_json), save};
}

}  // namespace ndx::queue
