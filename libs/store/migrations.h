// File: migrations.h
//
// The store's schema, as numbered SQL files (libs/store/migrations/NNNN_name.sql) embedded in the
// binary by CMake, and the runner that applies them. ndx-queue calls ApplyMigrations() at start:
//
//   NDX_RETURN_IF_ERROR(ndx::store::ApplyMigrations(pool));
//
// Each migration runs in its own transaction that first takes a transaction-scoped advisory lock
// (pg_advisory_xact_lock(kMigrationLockKey)), then reads ndx_schema_migrations, applies the
// migration if its version is missing and records it. So several instances starting at once apply
// each migration exactly once (the others wait for the lock, then see the version recorded), a
// failed migration leaves nothing behind, and re-running on an up-to-date database does nothing.
// Migrations are written to work on an existing NodeDrop database too (CREATE ... IF NOT EXISTS,
// ADD COLUMN IF NOT EXISTS), keeping its rows.
//
// Adding a migration: a new file with the next number, listed in NDX_STORE_MIGRATIONS in
// libs/store/CMakeLists.txt. Never edit an applied one.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/common/pg/pg_pool.h"

namespace ndx::store {

// The advisory lock key of the migration runner ("ndxmigr" as ASCII).
inline constexpr int64_t kMigrationLockKey = 0x6e64786d696772;

struct Migration {
  int version;       // 1, 2, 3... (from the file name)
  const char* name;  // the file name without number and extension, e.g. "executions"
  const char* sql;
};

// The embedded migrations, by increasing version.
const std::vector<Migration>& Migrations();

// Applies every missing migration, in order. Returns OK when the schema is at the newest version
// (also if it was already, or a newer binary migrated further). Errors: kUnavailable (database
// down), kInternal (a migration failed; the message names it and carries PostgreSQL's error),
// kDeadlineExceeded (statement timeout).
absl::Status ApplyMigrations(pg::PgPool& pool);

// The highest applied version, 0 when none (or ndx_schema_migrations does not exist).
absl::StatusOr<int> SchemaVersion(pg::PgPool& pool);

}  // namespace ndx::store
