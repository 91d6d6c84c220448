// File: job_payload.h
//
// The job payload: what the queue stores for an execution and the worker runs. A JSON document,
// built once at enqueue from an ExecuteWorkflowRequest, never changed afterwards:
//
//   {"v": 1, "workflowId": "...", "workflowName": "...", "workspaceId": "...", "userId": "...",
//    "requestId": "...", "triggerNodeId": "node-1", "triggerData": {...},
//    "singleNodeMode": false, "queue": "default",
//    "workflow": {"id", "name", "nodes": [{"id", "name", "type", "parameters": {...},
//                 "disabled", "settings": {"continueOnFail", ...}}],
//                 "connections": [{"id", "sourceNodeId", "sourceOutput", "targetNodeId",
//                                  "targetInput"}],
//                 "settings": {"executionTimeout", ...}}}
//
// The "workflow" member has NodeDrop's shape, so the engine parses it as it parses a NodeDrop
// workflow.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "ndx/v1/queue_service.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::queue {

// Checks the workflow beyond its structure (node types, parameters, cycles...): given the
// "workflow" JSON (the document being built, not text to parse again); INVALID_ARGUMENT naming the
// node or connection when it is wrong.
using WorkflowValidator = std::function<absl::Status(const nlohmann::ordered_json& workflow)>;

struct JobPayload {
  std::string json;             // the payload document
  std::string trigger_node_id;  // resolved: the request's, or the first trigger-like node
  std::string workflow_json;    // the "workflow" member (the snapshot kept in the history)
  bool save_to_history = true;  // workflow settings saveExecutionToDatabase (absent = true)
};

// Builds the payload. INVALID_ARGUMENT naming the field, node or connection: no workflow, no
// nodes, duplicate or empty node ids, a node without a type, parameters_json or trigger_data_json
// that is not JSON (parameters must be an object), a connection to a missing node, an unknown
// trigger_node_id; plus whatever `validator` (when set) rejects.
absl::StatusOr<JobPayload> BuildJobPayload(const v1::ExecuteWorkflowRequest& request,
                                           const std::string& queue,
                                           const WorkflowValidator& validator);

}  // namespace ndx::queue
