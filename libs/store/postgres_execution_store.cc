#include "libs/store/postgres_execution_store.h"

#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

// Statement names and texts. Each is prepared on a connection the first time it runs there
// (libpqxx 6 prepares lazily and accepts a repeated identical definition).
constexpr char kCreateName[] = "ndx_store_create";
constexpr char kCreateSql[] =
    "INSERT INTO executions (id, workflow_id, workflow_name, workspace_id, user_id, request_id,"
    " trigger_node_id, trigger_data, workflow_snapshot, mode, queue, retry_of_execution_id,"
    " status, started_at, created_at, queued_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, $10, $11, $12, 'RUNNING',"
    " ndx_ts($13::bigint), ndx_ts($13::bigint), ndx_ts($13::bigint), ndx_ts($13::bigint))"
    " ON CONFLICT (id) DO NOTHING";

constexpr char kFinishName[] = "ndx_store_finish";
constexpr char kFinishSql[] =
    "SELECT ndx_finish_execution($1, $2::bigint, $3, $4::json, $5::bigint)";

constexpr char kStartName[] = "ndx_store_start";
constexpr char kStartSql[] =
    "UPDATE executions SET"
    " fencing_epoch = CASE WHEN $2::bigint = 0 THEN fencing_epoch ELSE $2::bigint END,"
    " attempts = GREATEST(attempts, $3::integer),"
    " worker_id = COALESCE($4, worker_id),"
    " claimed_at = COALESCE(claimed_at, ndx_ts($5::bigint)),"
    " updated_at = ndx_utc_now()"
    " WHERE id = $1";

constexpr char kNodeName[] = "ndx_store_node";
constexpr char kNodeSql[] =
    "INSERT INTO node_executions AS n (id, execution_id, run_key, node_id, node_name, node_type,"
    " status, fencing_epoch, attempt, run_index, input_data, output_data, error, started_at,"
    " finished_at, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9::integer, $10::integer, $11::json,"
    " $12::json, $13::json, ndx_ts($14::bigint), ndx_ts($15::bigint), ndx_utc_now(),"
    " ndx_utc_now())"
    " ON CONFLICT (id) DO UPDATE SET"
    " status = EXCLUDED.status,"
    " fencing_epoch = EXCLUDED.fencing_epoch,"
    " attempt = EXCLUDED.attempt,"
    " run_index = EXCLUDED.run_index,"
    " node_name = COALESCE(EXCLUDED.node_name, n.node_name),"
    " node_type = COALESCE(EXCLUDED.node_type, n.node_type),"
    " input_data = COALESCE(EXCLUDED.input_data, n.input_data),"
    " output_data = COALESCE(EXCLUDED.output_data, n.output_data),"
    " error = EXCLUDED.error,"
    " started_at = COALESCE(n.started_at, EXCLUDED.started_at),"
    " finished_at = COALESCE(EXCLUDED.finished_at, n.finished_at),"
    " updated_at = ndx_utc_now()";

constexpr char kApplyOnceName[] = "ndx_store_apply_once";
constexpr char kApplyOnceSql[] =
    "INSERT INTO ndx_outbox_applied (op_id) VALUES ($1) ON CONFLICT (op_id) DO NOTHING";

// The execution columns of a list row, then GetExecution's extra ones.
constexpr char kExecutionColumns[] =
    "id, workflow_id, workflow_name, workspace_id, user_id, request_id, trigger_node_id,"
    " retry_of_execution_id, status, mode, queue, worker_id, fencing_epoch, attempts,"
    " trigger_data::text, error::text, ndx_us(created_at), ndx_us(started_at), ndx_us(queued_at),"
    " ndx_us(claimed_at), ndx_us(finished_at), ndx_us(updated_at)";

constexpr char kGetName[] = "ndx_store_get";
constexpr char kGetSql[] =
    "SELECT id, workflow_id, workflow_name, workspace_id, user_id, request_id, trigger_node_id,"
    " retry_of_execution_id, status, mode, queue, worker_id, fencing_epoch, attempts,"
    " trigger_data::text, error::text, ndx_us(created_at), ndx_us(started_at), ndx_us(queued_at),"
    " ndx_us(claimed_at), ndx_us(finished_at), ndx_us(updated_at),"
    " CASE WHEN $3::boolean THEN workflow_snapshot::text END"
    " FROM executions WHERE id = $1 AND ($2 = '' OR workspace_id = $2)";

constexpr char kNodesName[] = "ndx_store_nodes";
constexpr char kNodesSql[] =
    "SELECT id, execution_id, COALESCE(run_key, id), node_id, node_name, node_type, status,"
    " fencing_epoch, attempt, run_index,"
    " CASE WHEN $2::boolean THEN input_data::text END,"
    " CASE WHEN $2::boolean THEN output_data::text END, error::text,"
    " ndx_us(started_at), ndx_us(finished_at), ndx_us(created_at), ndx_us(updated_at)"
    " FROM node_executions WHERE execution_id = $1"
    " ORDER BY started_at NULLS LAST, created_at, id";

constexpr char kPruneName[] = "ndx_store_prune";
constexpr char kPruneSql[] =
    "WITH victims AS ("
    "  SELECT id FROM executions"
    "   WHERE created_at < ndx_ts($1::bigint) AND status NOT IN ('RUNNING', 'PAUSED')"
    "   ORDER BY created_at LIMIT $2::integer FOR UPDATE SKIP LOCKED),"
    " nodes AS (DELETE FROM node_executions WHERE execution_id IN (SELECT id FROM victims))"
    " DELETE FROM executions WHERE id IN (SELECT id FROM victims)";

constexpr char kDeleteName[] = "ndx_store_delete";
constexpr char kDeleteSql[] =
    "SELECT status FROM executions WHERE id = $1 AND ($2 = '' OR workspace_id = $2) FOR UPDATE";
constexpr char kDeleteRowsName[] = "ndx_store_delete_rows";
constexpr char kDeleteRowsSql[] =
    "WITH nodes AS (DELETE FROM node_executions WHERE execution_id = $1)"
    " DELETE FROM executions WHERE id = $1";

constexpr char kPruneOpsName[] = "ndx_store_prune_ops";
constexpr char kPruneOpsSql[] =
    "DELETE FROM ndx_outbox_applied WHERE op_id IN ("
    " SELECT op_id FROM ndx_outbox_applied WHERE applied_at < ndx_ts($1::bigint)"
    " LIMIT $2::integer)";

void Prepare(pqxx::transaction_base& tx, const char* name, const char* sql) {
  tx.conn().prepare(name, sql);
}

// A nullable text parameter: "" is NULL.
const char* Nullable(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// A nullable timestamp parameter, as microseconds since the epoch ("" = NULL).
std::string Micros(absl::Time t) {
  return t == kNoTime ? std::string() : absl::StrCat(absl::ToUnixMicros(t));
}

std::string Text(const pqxx::field& f) { return f.is_null() ? std::string() : f.c_str(); }

absl::Time Time(const pqxx::field& f) {
  return f.is_null() ? kNoTime : absl::FromUnixMicros(f.as<int64_t>());
}

// Rows written by NodeDrop's own backend may hold statuses ndx does not write.
ExecutionStatus LenientExecutionStatus(const std::string& text) {
  absl::StatusOr<ExecutionStatus> s = ParseExecutionStatus(text);
  if (s.ok()) return *s;
  return text == "PAUSED" ? ExecutionStatus::kRunning : ExecutionStatus::kError;
}

NodeStatus LenientNodeStatus(const std::string& text) {
  absl::StatusOr<NodeStatus> s = ParseNodeStatus(text);
  if (s.ok()) return *s;
  if (text == "COMPLETED") return NodeStatus::kSuccess;
  if (text == "FAILED") return NodeStatus::kError;
  if (text == "QUEUED" || text == "IDLE" || text == "PAUSED") return NodeStatus::kWaiting;
  return NodeStatus::kError;
}

// Reads the kExecutionColumns of `row`, starting at column 0.
ExecutionRecord ReadExecution(const pqxx::row& row) {
  ExecutionRecord e;
  e.id = Text(row[0]);
  e.workflow_id = Text(row[1]);
  e.workflow_name = Text(row[2]);
  e.workspace_id = Text(row[3]);
  e.user_id = Text(row[4]);
  e.request_id = Text(row[5]);
  e.trigger_node_id = Text(row[6]);
  e.retry_of_execution_id = Text(row[7]);
  e.status = LenientExecutionStatus(Text(row[8]));
  e.mode = Text(row[9]);
  e.queue = Text(row[10]);
  e.worker_id = Text(row[11]);
  e.fencing_epoch = row[12].as<int64_t>();
  e.attempts = row[13].as<int32_t>();
  e.trigger_data_json = Text(row[14]);
  e.error_json = Text(row[15]);
  e.created_at = Time(row[16]);
  e.started_at = Time(row[17]);
  e.queued_at = Time(row[18]);
  e.claimed_at = Time(row[19]);
  e.finished_at = Time(row[20]);
  e.updated_at = Time(row[21]);
  return e;
}

std::string DefaultEnqueueError() {
  return R"({"message":"the execution could not be enqueued","code":"ENQUEUE_FAILED"})";
}

}  // namespace

absl::Status PostgresExecutionStore::Create(pqxx::transaction_base& tx, const NewExecution& e) {
  Prepare(tx, kCreateName, kCreateSql);
  pqxx::result r = tx.exec_prepared(
      kCreateName, e.id, e.workflow_id, Nullable(e.workflow_name), Nullable(e.workspace_id),
      Nullable(e.user_id), Nullable(e.request_id), Nullable(e.trigger_node_id),
      Nullable(e.trigger_data_json), Nullable(e.workflow_snapshot_json), e.mode, Nullable(e.queue),
      Nullable(e.retry_of_execution_id), absl::ToUnixMicros(e.created_at));
  if (r.affected_rows() == 0) {
    return absl::AlreadyExistsError(absl::StrCat("execution ", e.id, " already exists"));
  }
  return absl::OkStatus();
}

absl::Status PostgresExecutionStore::Finish(pqxx::transaction_base& tx, const std::string& id,
                                            int64_t epoch, ExecutionStatus status,
                                            const std::string& error_json, absl::Time at) {
  Prepare(tx, kFinishName, kFinishSql);
  const std::string outcome =
      tx.exec_prepared1(kFinishName, id, epoch, std::string(ToString(status)), Nullable(error_json),
                        absl::ToUnixMicros(at))[0]
          .as<std::string>();
  if (outcome == "updated" || outcome == "same") return absl::OkStatus();
  if (outcome == "missing")
    return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
  return absl::FailedPreconditionError(
      absl::StrCat("execution ", id, " already ended as ", outcome.substr(outcome.find(':') + 1)));
}

absl::Status PostgresExecutionStore::Start(pqxx::transaction_base& tx, const AttemptStart& s) {
  Prepare(tx, kStartName, kStartSql);
  pqxx::result r = tx.exec_prepared(kStartName, s.execution_id, s.epoch, s.attempt,
                                    Nullable(s.worker_id), absl::ToUnixMicros(s.claimed_at));
  if (r.affected_rows() == 0) {
    return absl::NotFoundError(absl::StrCat("execution ", s.execution_id, " not found"));
  }
  return absl::OkStatus();
}

absl::Status PostgresExecutionStore::NodeRuns(pqxx::transaction_base& tx,
                                              absl::Span<const NodeRun> runs) {
  Prepare(tx, kNodeName, kNodeSql);
  for (const NodeRun& n : runs) {
    const std::string started = Micros(n.started_at);
    const std::string finished = Micros(n.finished_at);
    tx.exec_prepared(kNodeName, absl::StrCat(n.execution_id, ":", n.run_key), n.execution_id,
                     n.run_key, n.node_id, Nullable(n.node_name), Nullable(n.node_type),
                     std::string(ToString(n.status)), n.epoch, n.attempt, n.run_index,
                     Nullable(n.input_json), Nullable(n.output_json), Nullable(n.error_json),
                     Nullable(started), Nullable(finished));
  }
  return absl::OkStatus();
}

absl::Status PostgresExecutionStore::Write(pqxx::transaction_base& tx, const StoreWrite& write) {
  struct Visitor {
    PostgresExecutionStore& self;
    pqxx::transaction_base& tx;
    absl::Status operator()(const NewExecution& w) { return self.Create(tx, w); }
    absl::Status operator()(const EnqueueFailure& w) {
      return self.Finish(tx, w.execution_id, kNoEpoch, ExecutionStatus::kError,
                         w.error_json.empty() ? DefaultEnqueueError() : w.error_json, w.at);
    }
    absl::Status operator()(const AttemptStart& w) { return self.Start(tx, w); }
    absl::Status operator()(const std::vector<NodeRun>& w) { return self.NodeRuns(tx, w); }
    absl::Status operator()(const ExecutionFinish& w) {
      return self.Finish(tx, w.execution_id, w.epoch, w.status, w.error_json, w.finished_at);
    }
  };
  NDX_RETURN_IF_ERROR(ValidateWrite(write));
  return std::visit(Visitor{*this, tx}, write);
}

absl::Status PostgresExecutionStore::CreateExecution(const NewExecution& execution) {
  NDX_RETURN_IF_ERROR(ValidateWrite(execution));
  return pool_.Run([&](pqxx::work& tx) { return Create(tx, execution); });
}

absl::Status PostgresExecutionStore::MarkEnqueueFailed(const EnqueueFailure& failure) {
  const StoreWrite w = failure;
  NDX_RETURN_IF_ERROR(ValidateWrite(w));
  return pool_.Run([&](pqxx::work& tx) { return Write(tx, w); });
}

absl::Status PostgresExecutionStore::StartAttempt(const AttemptStart& start) {
  NDX_RETURN_IF_ERROR(ValidateWrite(start));
  return pool_.Run([&](pqxx::work& tx) { return Start(tx, start); });
}

absl::Status PostgresExecutionStore::RecordNodeRuns(absl::Span<const NodeRun> runs) {
  if (runs.empty()) return absl::OkStatus();
  const StoreWrite w = std::vector<NodeRun>(runs.begin(), runs.end());
  NDX_RETURN_IF_ERROR(ValidateWrite(w));
  return pool_.Run([&](pqxx::work& tx) { return NodeRuns(tx, runs); });
}

absl::Status PostgresExecutionStore::FinishExecution(const ExecutionFinish& finish) {
  NDX_RETURN_IF_ERROR(ValidateWrite(finish));
  return pool_.Run([&](pqxx::work& tx) {
    return Finish(tx, finish.execution_id, finish.epoch, finish.status, finish.error_json,
                  finish.finished_at);
  });
}

absl::Status PostgresExecutionStore::ApplyOnce(absl::string_view op_id, const StoreWrite& write) {
  if (op_id.empty()) return absl::InvalidArgumentError("op id is required");
  NDX_RETURN_IF_ERROR(ValidateWrite(write));
  return pool_.Run([&](pqxx::work& tx) -> absl::Status {
    Prepare(tx, kApplyOnceName, kApplyOnceSql);
    if (tx.exec_prepared(kApplyOnceName, std::string(op_id)).affected_rows() == 0) {
      return absl::OkStatus();  // applied before: only the op id is read, nothing changes
    }
    absl::Status s = Write(tx, write);
    if (s.code() == absl::StatusCode::kAlreadyExists &&
        std::holds_alternative<NewExecution>(write)) {
      return absl::OkStatus();
    }
    return s;
  });
}

absl::Status PostgresExecutionStore::ApplyOnceAll(
    absl::Span<const std::pair<std::string, StoreWrite>> ops) {
  for (const auto& [op_id, write] : ops) {
    if (op_id.empty()) return absl::InvalidArgumentError("op id is required");
    NDX_RETURN_IF_ERROR(ValidateWrite(write));
  }
  return pool_.Run([&](pqxx::work& tx) -> absl::Status {
    Prepare(tx, kApplyOnceName, kApplyOnceSql);
    for (const auto& [op_id, write] : ops) {
      if (tx.exec_prepared(kApplyOnceName, op_id).affected_rows() == 0) continue;
      absl::Status s = Write(tx, write);
      if (s.code() == absl::StatusCode::kAlreadyExists &&
          std::holds_alternative<NewExecution>(write)) {
        continue;  // as in ApplyOnce
      }
      NDX_RETURN_IF_ERROR(s);  // Run() rolls everything back
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<ExecutionRecord> PostgresExecutionStore::GetExecution(absl::string_view id,
                                                                     absl::string_view workspace_id,
                                                                     const GetOptions& options) {
  if (id.empty()) return absl::InvalidArgumentError("execution id is required");
  return pool_.Transact([&](pqxx::work& tx) -> absl::StatusOr<ExecutionRecord> {
    Prepare(tx, kGetName, kGetSql);
    pqxx::result r = tx.exec_prepared(kGetName, std::string(id), std::string(workspace_id),
                                      options.include_snapshot);
    if (r.empty()) return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
    ExecutionRecord e = ReadExecution(r[0]);
    e.workflow_snapshot_json = Text(r[0][22]);
    if (!options.include_node_runs) return e;
    Prepare(tx, kNodesName, kNodesSql);
    pqxx::result nodes =
        tx.exec_prepared(kNodesName, std::string(id), options.include_node_outputs);
    e.node_runs.reserve(nodes.size());
    for (const pqxx::row& row : nodes) {
      NodeRunRecord n;
      n.id = Text(row[0]);
      n.run.execution_id = Text(row[1]);
      n.run.run_key = Text(row[2]);
      n.run.node_id = Text(row[3]);
      n.run.node_name = Text(row[4]);
      n.run.node_type = Text(row[5]);
      n.run.status = LenientNodeStatus(Text(row[6]));
      n.run.epoch = row[7].as<int64_t>();
      n.run.attempt = row[8].as<int32_t>();
      n.run.run_index = row[9].as<int32_t>();
      n.run.input_json = Text(row[10]);
      n.run.output_json = Text(row[11]);
      n.run.error_json = Text(row[12]);
      n.run.started_at = Time(row[13]);
      n.run.finished_at = Time(row[14]);
      n.created_at = Time(row[15]);
      n.updated_at = Time(row[16]);
      // Rows ndx wrote have id "<execution>:<run key>"; run_key is NULL in NodeDrop's own rows.
      e.node_runs.push_back(std::move(n));
    }
    return e;
  });
}

absl::StatusOr<ExecutionPage> PostgresExecutionStore::ListExecutions(const ListQuery& query) {
  NDX_ASSIGN_OR_RETURN(const int page_size, EffectivePageSize(query.page_size));
  if (query.skip < 0) return absl::InvalidArgumentError("skip must not be negative");
  std::optional<PageCursor> cursor;
  if (!query.page_token.empty()) {
    NDX_ASSIGN_OR_RETURN(cursor, DecodePageToken(query));
  }

  // The WHERE clause and its parameters; one prepared statement per combination of filters
  // (named by a bit mask), so each shape is planned once per connection.
  std::vector<std::string> params;
  std::string where = "TRUE";
  int mask = 0;
  auto add = [&](int bit, const std::string& clause_prefix, std::string value,
                 const std::string& clause_suffix) {
    mask |= bit;
    params.push_back(std::move(value));
    absl::StrAppend(&where, " AND ", clause_prefix, "$", params.size(), clause_suffix);
  };
  if (!query.workspace_id.empty()) add(1, "workspace_id = ", query.workspace_id, "");
  if (!query.workflow_id.empty()) add(2, "workflow_id = ", query.workflow_id, "");
  if (!query.statuses.empty()) {
    std::vector<std::string> names;
    for (ExecutionStatus s : query.statuses) names.emplace_back(ToString(s));
    add(4, "status = ANY(", absl::StrCat("{", absl::StrJoin(names, ","), "}"), "::text[])");
  }
  if (query.created_after != kNoTime) {
    add(8, "created_at >= ndx_ts(", Micros(query.created_after), "::bigint)");
  }
  if (query.created_before != kNoTime) {
    add(16, "created_at < ndx_ts(", Micros(query.created_before), "::bigint)");
  }
  const std::string filter_where = where;
  const std::vector<std::string> filter_params = params;
  if (cursor) {
    mask |= 32;
    params.push_back(Micros(cursor->created_at));
    params.push_back(cursor->id);
    absl::StrAppend(&where, " AND (created_at, id) < (ndx_ts($", params.size() - 1, "::bigint), $",
                    params.size(), ")");
  }
  params.push_back(absl::StrCat(page_size + 1));
  params.push_back(absl::StrCat(query.skip));
  const std::string sql =
      absl::StrCat("SELECT ", kExecutionColumns, " FROM executions WHERE ", where,
                   " ORDER BY created_at DESC, id DESC LIMIT $", params.size() - 1,
                   "::integer OFFSET $", params.size(), "::integer");
  const std::string name = absl::StrCat("ndx_store_list_", mask);

  return pool_.Transact([&](pqxx::work& tx) -> absl::StatusOr<ExecutionPage> {
    tx.conn().prepare(name, sql);
    pqxx::result r = tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(params));
    ExecutionPage page;
    const size_t n = std::min<size_t>(r.size(), page_size);
    page.executions.reserve(n);
    for (size_t i = 0; i < n; ++i) page.executions.push_back(ReadExecution(r[i]));
    if (r.size() > static_cast<size_t>(page_size) && !page.executions.empty()) {
      const ExecutionRecord& last = page.executions.back();
      page.next_page_token = EncodePageToken({last.created_at, last.id}, query);
    }
    if (query.count_total) {
      const std::string count_name = absl::StrCat("ndx_store_count_", mask & 31);
      tx.conn().prepare(count_name,
                        absl::StrCat("SELECT count(*) FROM executions WHERE ", filter_where));
      page.total =
          tx.exec_prepared1(count_name, pqxx::prepare::make_dynamic_params(filter_params))[0]
              .as<int64_t>();
    }
    return page;
  });
}

absl::Status PostgresExecutionStore::DeleteExecution(absl::string_view id,
                                                     absl::string_view workspace_id,
                                                     bool even_if_running) {
  if (id.empty()) return absl::InvalidArgumentError("execution id is required");
  return pool_.Run([&](pqxx::work& tx) -> absl::Status {
    Prepare(tx, kDeleteName, kDeleteSql);
    Prepare(tx, kDeleteRowsName, kDeleteRowsSql);
    pqxx::result r = tx.exec_prepared(kDeleteName, std::string(id), std::string(workspace_id));
    if (r.empty()) return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
    const std::string status = Text(r[0][0]);
    if ((status == "RUNNING" || status == "PAUSED") && !even_if_running) {
      return absl::FailedPreconditionError(
          absl::StrCat("execution ", id, " is still running; cancel it before deleting it"));
    }
    tx.exec_prepared(kDeleteRowsName, std::string(id));
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> PostgresExecutionStore::Prune(absl::Time created_before, int batch_size) {
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size must be at least 1");
  return pool_.Transact([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    Prepare(tx, kPruneName, kPruneSql);
    Prepare(tx, kPruneOpsName, kPruneOpsSql);
    const int64_t cutoff = absl::ToUnixMicros(created_before);
    const int64_t n = tx.exec_prepared(kPruneName, cutoff, batch_size).affected_rows();
    tx.exec_prepared(kPruneOpsName, cutoff, batch_size);
    return n;
  });
}

}  // namespace ndx::store
