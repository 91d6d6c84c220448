#include "services/gateway/api_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"

namespace ndx::gateway {
namespace {

// Parses a `*_json` field: the JSON value, or null when empty or invalid.
Json ParseOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(nullptr) : j;
}

Json ErrorToJson(const v1::ExecutionError& e) {
  Json j = {{"message", e.message()}, {"code", e.code()}};
  j["nodeId"] = e.node_id().empty() ? Json(nullptr) : Json(e.node_id());
  if (!e.node_name().empty()) j["nodeName"] = e.node_name();
  if (!e.stack().empty()) j["stack"] = e.stack();
  j["transient"] = e.transient();
  return j;
}

absl::Status WrongType(const std::string& field, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": must be ", want));
}

absl::Status OptString(const Json& j, const char* key, const std::string& path, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return WrongType(absl::StrCat(path, ".", key), "a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status OptBool(const Json& j, const char* key, const std::string& path, bool* out,
                     bool* present = nullptr) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return WrongType(absl::StrCat(path, ".", key), "a boolean");
  *out = it->get<bool>();
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

absl::Status OptInt(const Json& j, const char* key, const std::string& path, int64_t* out,
                    bool* present = nullptr) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return WrongType(absl::StrCat(path, ".", key), "a number");
  *out = static_cast<int64_t>(it->get<double>());
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

}  // namespace

std::string RestStatus(v1::ExecutionState state) {
  switch (state) {
    case v1::EXECUTION_STATE_COMPLETED:
      return "SUCCESS";
    case v1::EXECUTION_STATE_FAILED:
      return "ERROR";
    case v1::EXECUTION_STATE_CANCELLED:
      return "CANCELLED";
    case v1::EXECUTION_STATE_TIMED_OUT:
      return "TIMEOUT";
    default:
      return "RUNNING";
  }
}

std::string StateName(v1::ExecutionState state) {
  std::string name = v1::ExecutionState_Name(state);
  constexpr absl::string_view kPrefix = "EXECUTION_STATE_";
  if (name.rfind(kPrefix.data(), 0) == 0) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

std::string RestNodeStatus(v1::NodeState state) {
  switch (state) {
    case v1::NODE_STATE_COMPLETED:
      return "SUCCESS";
    case v1::NODE_STATE_FAILED:
      return "ERROR";
    case v1::NODE_STATE_SKIPPED:
      return "SKIPPED";
    case v1::NODE_STATE_CANCELLED:
      return "CANCELLED";
    default:
      return "RUNNING";
  }
}

std::optional<std::vector<v1::ExecutionState>> StatesForRestStatus(std::string status) {
  absl::AsciiStrToUpper(&status);
  if (status == "RUNNING") {
    return std::vector{v1::EXECUTION_STATE_WAITING, v1::EXECUTION_STATE_DELAYED,
                       v1::EXECUTION_STATE_ACTIVE, v1::EXECUTION_STATE_CANCELLING};
  }
  if (status == "SUCCESS") return std::vector{v1::EXECUTION_STATE_COMPLETED};
  if (status == "ERROR") return std::vector{v1::EXECUTION_STATE_FAILED};
  if (status == "CANCELLED") return std::vector{v1::EXECUTION_STATE_CANCELLED};
  if (status == "TIMEOUT") return std::vector{v1::EXECUTION_STATE_TIMED_OUT};
  return std::nullopt;
}

bool IsTerminal(v1::ExecutionState state) {
  return state == v1::EXECUTION_STATE_COMPLETED || state == v1::EXECUTION_STATE_FAILED ||
         state == v1::EXECUTION_STATE_CANCELLED || state == v1::EXECUTION_STATE_TIMED_OUT;
}

Json IsoTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return nullptr;
  const absl::Time at = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
}

std::string IsoNow() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

Json ExecutionToJson(const v1::Execution& e) {
  Json nodes = Json::array();
  for (const v1::NodeExecution& n : e.node_executions()) {
    Json node = {
        {"id", absl::StrCat(e.id(), ":", n.node_id(), ":", n.run_index())},
        {"nodeId", n.node_id()},
        {"nodeName", n.node_name()},
        {"nodeType", n.node_type()},
        {"executionId", e.id()},
        {"status", RestNodeStatus(n.state())},
        {"inputData", nullptr},
        {"outputData", ParseOrNull(n.output_json())},
        {"error", n.has_error() ? ErrorToJson(n.error()) : Json(nullptr)},
        {"startedAt", IsoTime(n.started_at())},
        {"finishedAt", IsoTime(n.finished_at())},
        {"duration", n.duration_ms()},
        {"attempt", n.attempt()},
        {"runIndex", n.run_index()},
        {"reused", n.reused()},
    };
    nodes.push_back(std::move(node));
  }
  Json j = {
      {"id", e.id()},
      {"workflowId", e.workflow_id()},
      {"workspaceId", e.workspace_id().empty() ? Json(nullptr) : Json(e.workspace_id())},
      {"userId", e.user_id().empty() ? Json(nullptr) : Json(e.user_id())},
      {"status", RestStatus(e.state())},
      {"state", StateName(e.state())},
      {"mode", e.mode() == v1::EXECUTION_MODE_DIRECT ? "direct" : "queue"},
      {"queue", e.queue()},
      {"priority", e.priority()},
      {"attempts", e.attempts()},
      {"maxAttempts", e.max_attempts()},
      {"startedAt", IsoTime(e.created_at())},
      {"runStartedAt", IsoTime(e.started_at())},
      {"finishedAt", IsoTime(e.finished_at())},
      {"createdAt", IsoTime(e.created_at())},
      {"updatedAt", IsoTime(e.updated_at())},
      {"scheduledAt", IsoTime(e.scheduled_at())},
      {"triggerNodeId", e.trigger_node_id()},
      {"triggerData", ParseOrNull(e.trigger_data_json())},
      {"singleNodeMode", e.single_node_mode()},
      {"error", e.has_error() ? ErrorToJson(e.error()) : Json(nullptr)},
      {"currentNodeId", e.current_node_id().empty() ? Json(nullptr) : Json(e.current_node_id())},
      {"workerId", e.worker_id().empty() ? Json(nullptr) : Json(e.worker_id())},
      {"lastSeq", e.last_seq()},
      {"cancelRequested", e.cancel_requested()},
      {"retryOfExecutionId",
       e.retry_of_execution_id().empty() ? Json(nullptr) : Json(e.retry_of_execution_id())},
      {"nodeExecutions", std::move(nodes)},
      {"workflow",
       {{"id", e.workflow_id()}, {"name", e.workflow_name()}, {"description", nullptr}}},
  };
  return j;
}

Json EventToJson(const v1::ExecutionEvent& e) {
  Json j = {{"executionId", e.execution_id()},
            {"workflowId", e.workflow_id()},
            {"seq", e.seq()},
            {"type", e.type_name()},
            {"timestamp", IsoTime(e.timestamp())}};
  if (!e.node_id().empty()) j["nodeId"] = e.node_id();
  Json data = ParseOrNull(e.data_json());
  if (!data.is_object()) data = Json::object();
  const bool node_event =
      e.type() == v1::EVENT_TYPE_NODE_STARTED || e.type() == v1::EVENT_TYPE_NODE_COMPLETED ||
      e.type() == v1::EVENT_TYPE_NODE_FAILED || e.type() == v1::EVENT_TYPE_NODE_SKIPPED;
  if (node_event) {
    if (!e.node_name().empty() && !data.contains("nodeName")) data["nodeName"] = e.node_name();
    if (!e.node_type().empty() && !data.contains("nodeType")) data["nodeType"] = e.node_type();
  }
  j["data"] = std::move(data);
  if (e.has_error()) {
    Json err = ErrorToJson(e.error());
    err["timestamp"] = j["timestamp"];
    j["error"] = std::move(err);
  }
  if (e.truncated()) j["truncated"] = true;
  if (e.attempt() > 0) j["attempt"] = e.attempt();
  j["executionState"] = StateName(e.execution_state());
  return j;
}

Json QueueStatsToJson(const v1::QueueStats& s) {
  return {{"queue", s.queue()},
          {"waiting", s.waiting()},
          {"active", s.active()},
          {"delayed", s.delayed()},
          {"completed", s.completed()},
          {"failed", s.failed()},
          {"cancelled", s.cancelled()},
          {"timedOut", s.timed_out()},
          {"oldestWaitingAgeMs",
           google::protobuf::util::TimeUtil::DurationToMilliseconds(s.oldest_waiting_age())}};
}

absl::Status WorkflowFromJson(const Json& j, const std::string& field, v1::Workflow* out) {
  if (!j.is_object()) return WrongType(field, "an object");
  if (auto id = j.find("id"); id != j.end() && id->is_number()) {
    out->set_id(id->dump());
  } else if (absl::Status s = OptString(j, "id", field, out->mutable_id()); !s.ok()) {
    return s;
  }
  if (absl::Status s = OptString(j, "name", field, out->mutable_name()); !s.ok()) return s;
  auto nodes = j.find("nodes");
  if (nodes == j.end() || !nodes->is_array()) {
    return WrongType(absl::StrCat(field, ".nodes"), "an array");
  }
  for (size_t i = 0; i < nodes->size(); ++i) {
    const Json& n = (*nodes)[i];
    const std::string path = absl::StrCat(field, ".nodes[", i, "]");
    if (!n.is_object()) return WrongType(path, "an object");
    v1::Node* node = out->add_nodes();
    if (absl::Status s = OptString(n, "id", path, node->mutable_id()); !s.ok()) return s;
    if (absl::Status s = OptString(n, "name", path, node->mutable_name()); !s.ok()) return s;
    if (absl::Status s = OptString(n, "type", path, node->mutable_type()); !s.ok()) return s;
    if (auto p = n.find("parameters"); p != n.end() && !p->is_null()) {
      if (!p->is_object()) return WrongType(absl::StrCat(path, ".parameters"), "an object");
      node->set_parameters_json(p->dump());
    }
    bool disabled = false;
    if (absl::Status s = OptBool(n, "disabled", path, &disabled); !s.ok()) return s;
    node->set_disabled(disabled);
    if (auto st = n.find("settings"); st != n.end() && !st->is_null()) {
      const std::string sp = absl::StrCat(path, ".settings");
      if (!st->is_object()) return WrongType(sp, "an object");
      v1::NodeSettings* ns = node->mutable_settings();
      bool b = false;
      int64_t v = 0;
      bool present = false;
      if (absl::Status s = OptBool(*st, "continueOnFail", sp, &b); !s.ok()) return s;
      ns->set_continue_on_fail(b);
      b = false;
      if (absl::Status s = OptBool(*st, "alwaysOutputData", sp, &b); !s.ok()) return s;
      ns->set_always_output_data(b);
      b = false;
      if (absl::Status s = OptBool(*st, "retryOnFail", sp, &b); !s.ok()) return s;
      ns->set_retry_on_fail(b);
      if (absl::Status s = OptInt(*st, "maxRetries", sp, &v, &present); !s.ok()) return s;
      if (present) ns->set_max_retries(static_cast<int32_t>(v));
      present = false;
      if (absl::Status s = OptInt(*st, "retryDelay", sp, &v, &present); !s.ok()) return s;
      if (present) ns->set_retry_delay_ms(v);
      present = false;
      if (absl::Status s = OptInt(*st, "timeout", sp, &v, &present); !s.ok()) return s;
      if (present) ns->set_timeout_ms(v);
    }
  }
  if (auto conns = j.find("connections"); conns != j.end() && !conns->is_null()) {
    if (!conns->is_array()) return WrongType(absl::StrCat(field, ".connections"), "an array");
    for (size_t i = 0; i < conns->size(); ++i) {
      const Json& c = (*conns)[i];
      const std::string path = absl::StrCat(field, ".connections[", i, "]");
      if (!c.is_object()) return WrongType(path, "an object");
      v1::Connection* conn = out->add_connections();
      if (absl::Status s = OptString(c, "id", path, conn->mutable_id()); !s.ok()) return s;
      if (absl::Status s = OptString(c, "sourceNodeId", path, conn->mutable_source_node_id());
          !s.ok()) {
        return s;
      }
      if (absl::Status s = OptString(c, "sourceOutput", path, conn->mutable_source_output());
          !s.ok()) {
        return s;
      }
      if (absl::Status s = OptString(c, "targetNodeId", path, conn->mutable_target_node_id());
          !s.ok()) {
        return s;
      }
      if (absl::Status s = OptString(c, "targetInput", path, conn->mutable_target_input());
          !s.ok()) {
        return s;
      }
    }
  }
  if (auto st = j.find("settings"); st != j.end() && !st->is_null()) {
    const std::string sp = absl::StrCat(field, ".settings");
    if (!st->is_object()) return WrongType(sp, "an object");
    v1::WorkflowSettings* ws = out->mutable_settings();
    int64_t v = 0;
    if (absl::Status s = OptInt(*st, "executionTimeout", sp, &v); !s.ok()) return s;
    ws->set_execution_timeout_ms(v);
    bool b = false, present = false;
    if (absl::Status s = OptBool(*st, "saveExecutionToDatabase", sp, &b, &present); !s.ok()) {
      return s;
    }
    if (present) ws->set_save_execution_to_database(b);
    if (absl::Status s = OptString(*st, "timezone", sp, ws->mutable_timezone()); !s.ok()) return s;
    if (absl::Status s = OptString(*st, "errorWorkflowId", sp, ws->mutable_error_workflow_id());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = OptString(*st, "callerPolicy", sp, ws->mutable_caller_policy()); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace ndx::gateway
