#include "libs/store/migrations.h"

#include <string>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

constexpr char kCreateVersionTable[] =
    "CREATE TABLE IF NOT EXISTS ndx_schema_migrations ("
    " version integer PRIMARY KEY NOT NULL,"
    " name text NOT NULL,"
    " applied_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'))";

}  // namespace

absl::Status ApplyMigrations(pg::PgPool& pool) {
  for (const Migration& m : Migrations()) {
    bool applied_now = false;
    absl::Status s = pool.Run([&](pqxx::work& tx) {
      // The lock comes first: two CREATE TABLE IF NOT EXISTS racing can both fail on the catalog's
      // unique index, so even creating the version table is serialized.
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
      tx.exec(kCreateVersionTable);
      pqxx::result r =
          tx.exec_params("SELECT 1 FROM ndx_schema_migrations WHERE version = $1", m.version);
      if (!r.empty()) return absl::OkStatus();
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO ndx_schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     std::string(m.name));
      applied_now = true;
      return absl::OkStatus();
    });
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("schema migration ", m.version, " (", m.name,
                                                 ") failed: ", s.message()));
    }
    if (applied_now) {
      log::Info("applied schema migration", {{"version", m.version}, {"name", m.name}});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SchemaVersion(pg::PgPool& pool) {
  return pool.Transact([](pqxx::work& tx) -> absl::StatusOr<int> {
    pqxx::row exists = tx.exec1("SELECT to_regclass('ndx_schema_migrations') IS NOT NULL");
    if (!exists[0].as<bool>()) return 0;
    pqxx::row r = tx.exec1("SELECT coalesce(max(version), 0) FROM ndx_schema_migrations");
    return r[0].as<int>();
  });
}

}  // namespace ndx::store
