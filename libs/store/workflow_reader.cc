#include "libs/store/workflow_reader.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

nlohmann::json ParseOr(const pqxx::field& f, nlohmann::json fallback) {
  if (f.is_null()) return fallback;
  nlohmann::json j = nlohmann::json::parse(f.c_str(), nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace

absl::StatusOr<nlohmann::json> LoadNodeDropWorkflow(pg::PgPool& pool, const std::string& id,
                                                    const std::string& workspace) {
  nlohmann::json out;
  NDX_RETURN_IF_ERROR(pool.Run([&](pqxx::work& tx) -> absl::Status {
    const pqxx::row exists = tx.exec1(
        "SELECT to_regclass('public.workflows') IS NOT NULL, EXISTS (SELECT 1 FROM "
        "information_schema.columns WHERE table_name = 'workflows' AND column_name = "
        "'workspace_id')");
    if (!exists[0].as<bool>()) {
      return absl::NotFoundError(absl::StrCat(
          "workflow ", id,
          ": this database has no NodeDrop `workflows` table; send the workflow itself"));
    }
    const bool has_workspace = exists[1].as<bool>();
    pqxx::result r = has_workspace && !workspace.empty()
                         ? tx.exec_params(
                               "SELECT id, name, nodes::text, connections::text, settings::text "
                               "FROM workflows WHERE id = $1 AND workspace_id = $2",
                               id, workspace)
                         : tx.exec_params(
                               "SELECT id, name, nodes::text, connections::text, settings::text "
                               "FROM workflows WHERE id = $1",
                               id);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("workflow ", id, " not found"));
    out = {{"id", r[0][0].c_str()},
           {"name", r[0][1].is_null() ? "" : r[0][1].c_str()},
           {"nodes", ParseOr(r[0][2], nlohmann::json::array())},
           {"connections", ParseOr(r[0][3], nlohmann::json::array())},
           {"settings", ParseOr(r[0][4], nlohmann::json::object())}};
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ndx::store
