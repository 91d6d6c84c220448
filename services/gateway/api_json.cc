#include "services/gateway/api_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "libs/nodedrop/workflow_json.h"

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

Json WorkerToJson(const v1::WorkerStatus& w) {
  const auto state = [&]() -> const char* {
    switch (w.state()) {
      case v1::WORKER_STATE_DRAINING:
        return "draining";
      case v1::WORKER_STATE_DRAINED:
        return "drained";
      default:
        return "running";
    }
  };
  Json running = Json::array();
  for (const v1::RunningExecution& r : w.running_executions()) {
    running.push_back({{"executionId", r.execution_id()},
                       {"workflowId", r.workflow_id()},
                       {"queue", r.queue()},
                       {"currentNodeId", r.current_node_id()},
                       {"currentNodeName", r.current_node_name()},
                       {"startedAt", IsoTime(r.started_at())},
                       {"attempt", r.attempt()}});
  }
  const v1::LeaseHealth& lh = w.lease_health();
  return {{"workerId", w.worker_id()},
          {"hostname", w.hostname()},
          {"version", w.version()},
          {"state", state()},
          {"queues", Json(std::vector<std::string>(w.queues().begin(), w.queues().end()))},
          {"slotsTotal", w.slots_total()},
          {"slotsBusy", w.slots_busy()},
          {"running", std::move(running)},
          {"processed", w.processed_count()},
          {"failed", w.failed_count()},
          {"retried", w.retried_count()},
          {"startedAt", IsoTime(w.started_at())},
          {"lastClaimAt", IsoTime(w.last_claim_at())},
          {"reportedAt", IsoTime(w.reported_at())},
          {"leasesLost", lh.leases_lost()},
          {"consecutiveFailedRenewals", lh.consecutive_failed_renewals()}};
}

absl::Status WorkflowFromJson(const Json& j, const std::string& field, v1::Workflow* out) {
  absl::StatusOr<v1::Workflow> wf = nodedrop::WorkflowFromNodeDropJson(j, "", field);
  if (!wf.ok()) return wf.status();
  *out = *std::move(wf);
  return absl::OkStatus();
}

}  // namespace ndx::gateway
