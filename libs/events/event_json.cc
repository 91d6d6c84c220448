#include "libs/events/event_json.h"

#include "absl/strings/str_cat.h"

namespace ndx::events {
namespace {

v1::EventType TypeOf(absl::string_view name) {
  if (name == kStarted) return v1::EVENT_TYPE_STARTED;
  if (name == kNodeStarted) return v1::EVENT_TYPE_NODE_STARTED;
  if (name == kNodeCompleted) return v1::EVENT_TYPE_NODE_COMPLETED;
  if (name == kNodeFailed) return v1::EVENT_TYPE_NODE_FAILED;
  if (name == kNodeSkipped) return v1::EVENT_TYPE_NODE_SKIPPED;
  if (name == kRetrying) return v1::EVENT_TYPE_RETRYING;
  if (name == kCompleted) return v1::EVENT_TYPE_COMPLETED;
  if (name == kFailed) return v1::EVENT_TYPE_FAILED;
  if (name == kCancelled) return v1::EVENT_TYPE_CANCELLED;
  return v1::EVENT_TYPE_UNSPECIFIED;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string IsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

bool IsTerminalType(absl::string_view type) {
  return type == kCompleted || type == kFailed || type == kCancelled;
}

std::string ToJson(const Event& event, size_t max_output_bytes) {
  Json j = {{"type", event.type},
            {"executionId", event.execution_id},
            {"workflowId", event.workflow_id},
            {"timestamp", IsoTime(event.timestamp)}};
  if (!event.node_id.empty()) j["nodeId"] = event.node_id;
  if (!event.node_name.empty()) j["nodeName"] = event.node_name;
  if (!event.node_type.empty()) j["nodeType"] = event.node_type;
  if (!event.data.is_null()) j["data"] = event.data;
  if (event.error) {
    Json e = {{"message", event.error->message}};
    if (!event.error->code.empty()) e["code"] = event.error->code;
    if (!event.error->node_id.empty()) e["nodeId"] = event.error->node_id;
    j["error"] = std::move(e);
  }
  std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  // The output is part of the text: when the whole event fits, the output does (serializing the
  // output on its own, to measure it, is needed only for large events).
  if (max_output_bytes > 0 && text.size() > max_output_bytes && event.type == kNodeCompleted &&
      j.contains("data") && j["data"].is_object() && j["data"].contains("outputData")) {
    const std::string out = j["data"]["outputData"].dump();
    if (out.size() > max_output_bytes) {
      j["data"]["outputData"] = nullptr;
      j["data"]["outputBytes"] = out.size();
      j["truncated"] = true;
      text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
  }
  return text;
}

absl::Status ToProto(absl::string_view json, int64_t seq, v1::ExecutionEvent* out) {
  const Json j = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("type")) {
    return absl::InvalidArgumentError(absl::StrCat("event ", seq, " is not an event object"));
  }
  out->set_seq(seq);
  out->set_type_name(Str(j, "type"));
  out->set_type(TypeOf(out->type_name()));
  out->set_execution_id(Str(j, "executionId"));
  out->set_workflow_id(Str(j, "workflowId"));
  out->set_node_id(Str(j, "nodeId"));
  out->set_node_name(Str(j, "nodeName"));
  out->set_node_type(Str(j, "nodeType"));
  absl::Time t;
  std::string err;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", Str(j, "timestamp"), &t, &err)) {
    const int64_t ms = absl::ToUnixMillis(t);
    out->mutable_timestamp()->set_seconds(ms / 1000);
    out->mutable_timestamp()->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
  }
  if (j.contains("data") && !j["data"].is_null()) {
    const Json& data = j["data"];
    out->set_data_json(data.dump(-1, ' ', false, Json::error_handler_t::replace));
    if (out->type() == v1::EVENT_TYPE_RETRYING && data.is_object()) {
      if (data.contains("attempt") && data["attempt"].is_number()) {
        out->set_attempt(data["attempt"].get<int32_t>());
      }
      if (data.contains("delay") && data["delay"].is_number()) {
        const int64_t ms = data["delay"].get<int64_t>();
        out->mutable_retry_delay()->set_seconds(ms / 1000);
        out->mutable_retry_delay()->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
      }
    }
  }
  out->set_truncated(j.value("truncated", false));
  if (j.contains("error") && j["error"].is_object()) {
    const Json& e = j["error"];
    v1::ExecutionError* pe = out->mutable_error();
    pe->set_message(Str(e, "message"));
    pe->set_code(Str(e, "code"));
    pe->set_node_id(Str(e, "nodeId"));
    pe->set_node_name(Str(e, "nodeName"));
    pe->set_transient(e.value("transient", false));
  }
  const std::string state = Str(j, "executionState");
  if (state == "TIMED_OUT") {
    out->set_execution_state(v1::EXECUTION_STATE_TIMED_OUT);
  } else if (out->type() == v1::EVENT_TYPE_COMPLETED) {
    out->set_execution_state(v1::EXECUTION_STATE_COMPLETED);
  } else if (out->type() == v1::EVENT_TYPE_FAILED) {
    out->set_execution_state(v1::EXECUTION_STATE_FAILED);
  } else if (out->type() == v1::EVENT_TYPE_CANCELLED) {
    out->set_execution_state(v1::EXECUTION_STATE_CANCELLED);
  }
  return absl::OkStatus();
}

}  // namespace ndx::events
