// File: workflow_reader.h
//
// Reads a workflow from NodeDrop's own `workflows` table (id, name, nodes, connections, settings
// JSON columns; workspace_id when the table has it), for ExecuteWorkflow requests that name a
// workflow instead of carrying it. The table belongs to NodeDrop: ndx only reads it, and a
// database without it (ndx on its own) answers NOT_FOUND saying so.
//
// Thread-safe (PgPool).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "libs/common/pg/pg_pool.h"
#include "nlohmann/json.hpp"

namespace ndx::store {

// {"id", "name", "nodes", "connections", "settings"} of workflow `id`. With a non-empty
// `workspace`, a workflow of another workspace is NOT_FOUND. UNAVAILABLE when PostgreSQL is down.
absl::StatusOr<nlohmann::json> LoadNodeDropWorkflow(pg::PgPool& pool, const std::string& id,
                                                    const std::string& workspace);

}  // namespace ndx::store
