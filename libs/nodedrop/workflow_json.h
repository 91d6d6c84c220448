// File: workflow_json.h
//
// Reading NodeDrop workflow files for `ndx run`: the editor's export ({name, nodes, connections,
// settings, ...}), or a document that wraps it as {"workflow": {...}} (the API's `workflowData`
// envelope and tests/workflows/corpus files). UI-only fields (position, icon, color, notes, ...)
// are dropped; node parameters travel unchanged as parameters_json.
//
//   absl::StatusOr<v1::Workflow> wf = ndx::nodedrop::LoadWorkflowFile("examples/hello.json");
//
// Errors are INVALID_ARGUMENT naming the file and the JSON path (`nodes[2].parameters: must be an
// object`), or NOT_FOUND when the file cannot be read. Deep checks (node types, cycles,
// parameters) are the server's: ExecuteWorkflow answers INVALID_ARGUMENT naming the node.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ndx/v1/execution.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::nodedrop {

// Converts a parsed NodeDrop workflow document (either shape above). `default_id` becomes the
// workflow id when the document has none. Errors name the field ("nodes[2].parameters: must be an
// object"), under `field` when the document is part of a request ("workflowData.nodes[2]...").
absl::StatusOr<v1::Workflow> WorkflowFromNodeDropJson(const nlohmann::json& doc,
                                                      const std::string& default_id,
                                                      const std::string& field = "");

// Reads and converts a workflow file. The workflow id defaults to the file name without its
// directory and extension.
absl::StatusOr<v1::Workflow> LoadWorkflowFile(const std::string& path);

// Returns the id of the node `id_or_name` names: a node id, else the first node with that
// display name. NOT_FOUND listing the trigger-like nodes when neither matches.
absl::StatusOr<std::string> ResolveNodeId(const v1::Workflow& workflow,
                                          const std::string& id_or_name);

}  // namespace ndx::nodedrop
