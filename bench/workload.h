// File: workload.h
//
// The job every queue benchmark enqueues: a 10-node NodeDrop workflow (webhook trigger, HTTP calls,
// IF, Set, Code, Merge, Switch...) with its trigger data, about 2 KB of JSON once ndx has built
// its job payload from it. Both sides store the same bytes: ndx's RedisQueue gets Payload(), the
// BullMQ peer gets it as `data` (JSON.stringify of it gives back the same bytes), and
// ExecuteWorkflow through gRPC sends Request(), from which ndx-queue builds that payload itself.
#pragma once

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "ndx/v1/queue_service.pb.h"

namespace ndx::bench {

// A node and a connection of a benchmark workflow, as constant tables.
struct NodeSpec {
  const char* id;
  const char* name;
  const char* type;
  const char* parameters_json;
};
struct EdgeSpec {
  const char* source;
  const char* output;
  const char* target;
};

// Fills `wf` with the nodes and connections (ids c1, c2, ...), and saveExecutionToDatabase false:
// the benchmarks measure the queue and worker paths, not the history.
void BuildWorkflow(std::span<const NodeSpec> nodes, std::span<const EdgeSpec> edges,
                   v1::Workflow& wf);

// The ExecuteWorkflow request of the benchmark (inline workflow, queue mode, no request_id: what
// the gateway sends for a NodeDrop "execute workflow"), with saveExecutionToDatabase false so that
// only the queue path is measured.
v1::ExecuteWorkflowRequest WorkflowRequest(const std::string& queue);

// The job payload ndx stores for WorkflowRequest(queue) (services/queue/job_payload.h).
absl::StatusOr<std::string> WorkflowPayload(const std::string& queue);

}  // namespace ndx::bench
