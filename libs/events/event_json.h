// File: event_json.h
//
// The JSON shape of a stored progress event (NodeDrop's wire names, DESIGN.md "Events") and its
// conversion to the API's ExecutionEvent.
//
//   {"type": "node-completed", "executionId": "...", "workflowId": "...",
//    "timestamp": "2026-01-01T00:00:00.123Z", "nodeId": "node-2", "nodeName": "IF",
//    "nodeType": "ifElse", "data": {"outputData": {...}, "duration": 4,
//    "activeConnections": [...]}, "truncated": true?, "error": {"message", "code", "nodeId"}?}
//
// The seq is not stored in the JSON: it is the event's position in the execution's log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ndx/v1/execution.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::events {

using Json = nlohmann::ordered_json;

// The NodeDrop wire names.
inline constexpr absl::string_view kStarted = "started";
inline constexpr absl::string_view kNodeStarted = "node-started";
inline constexpr absl::string_view kNodeCompleted = "node-completed";
inline constexpr absl::string_view kNodeFailed = "node-failed";
inline constexpr absl::string_view kNodeSkipped = "node-skipped";
inline constexpr absl::string_view kRetrying = "retrying";
inline constexpr absl::string_view kCompleted = "completed";
inline constexpr absl::string_view kFailed = "failed";
inline constexpr absl::string_view kCancelled = "cancelled";

struct EventError {
  std::string message;
  std::string code;
  std::string node_id;
};

struct Event {
  std::string type;  // a wire name above
  std::string execution_id;
  std::string workflow_id;
  absl::Time timestamp;
  std::string node_id, node_name, node_type;
  Json data;  // null: no "data" member
  std::optional<EventError> error;
};

// The event as stored (without seq). With `max_output_bytes` > 0, a node-completed event whose
// data.outputData serializes larger than that has it replaced by null and gets "truncated": true;
// the full output stays readable through GetExecution.
std::string ToJson(const Event& event, size_t max_output_bytes = 0);

// The final events of an execution: completed, failed, cancelled.
bool IsTerminalType(absl::string_view type);

// Fills `out` from a stored event and its seq. INVALID_ARGUMENT when `json` is not an event.
absl::Status ToProto(absl::string_view json, int64_t seq, v1::ExecutionEvent* out);

// "2026-01-01T00:00:00.123Z"
std::string IsoTime(absl::Time t);

}  // namespace ndx::events
