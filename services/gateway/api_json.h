// File: api_json.h
//
// The gateway's JSON: NodeDrop's REST and event shapes built from the ndx/v1 messages, and the
// NodeDrop workflow JSON (`workflowData`) turned into v1::Workflow. Only the gateway's .cc files
// include this header (it brings nlohmann/json).
//
// Status strings (fact sheet §8): executions WAITING/DELAYED/ACTIVE/CANCELLING -> "RUNNING",
// COMPLETED -> "SUCCESS", FAILED -> "ERROR", CANCELLED -> "CANCELLED", TIMED_OUT -> "TIMEOUT";
// nodes RUNNING/WAITING -> "RUNNING", COMPLETED -> "SUCCESS", FAILED -> "ERROR", SKIPPED ->
// "SKIPPED", CANCELLED -> "CANCELLED". ndx's own state is also given, lower case, as `state`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/timestamp.pb.h"
#include "ndx/v1/execution.pb.h"
#include "ndx/v1/queue_service.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::gateway {

using Json = nlohmann::json;

// NodeDrop `executions.status` for a state.
std::string RestStatus(v1::ExecutionState state);
// ndx's state name in lower case: "waiting", "active", "timed_out", ...
std::string StateName(v1::ExecutionState state);
// NodeDrop `node_executions.status` for a node state.
std::string RestNodeStatus(v1::NodeState state);
// The states a REST `status` filter means (RUNNING, SUCCESS, ERROR, CANCELLED, TIMEOUT; case
// insensitive); nullopt for an unknown value.
std::optional<std::vector<v1::ExecutionState>> StatesForRestStatus(std::string status);
// True for COMPLETED, FAILED, CANCELLED, TIMED_OUT.
bool IsTerminal(v1::ExecutionState state);

// ISO 8601 UTC with milliseconds; null when unset (seconds == 0 and nanos == 0).
Json IsoTime(const google::protobuf::Timestamp& t);
std::string IsoNow();

// NodeDrop's Execution JSON (with ndx's extra fields, see the .cc).
Json ExecutionToJson(const v1::Execution& e);
// NodeDrop's `execution-event` payload plus ndx's `seq` and `workflowId` (fact sheet §5.2:
// nodeName/nodeType are inside `data` for node events).
Json EventToJson(const v1::ExecutionEvent& e);
Json QueueStatsToJson(const v1::QueueStats& s);
// One worker of QueueService.ListWorkers, for GET /api/executions/queue/workers.
Json WorkerToJson(const v1::WorkerStatus& w);

// Fills `out` from NodeDrop's workflow JSON ({id?, name?, nodes: [{id, name, type, parameters,
// disabled, settings}], connections: [{id, sourceNodeId, sourceOutput, targetNodeId,
// targetInput}], settings: {executionTimeout, saveExecutionToDatabase, timezone,
// errorWorkflowId, callerPolicy}}). INVALID_ARGUMENT naming the field (`field` is its path, e.g.
// "workflowData") when a member has the wrong JSON type or a node lacks its id or type; the
// conversion is libs/nodedrop's, shared with the CLI and ndx-queue. Deeper checks (unknown node
// types, dangling connections, cycles) are ndx-queue's.
absl::Status WorkflowFromJson(const Json& j, const std::string& field, v1::Workflow* out);

}  // namespace ndx::gateway
