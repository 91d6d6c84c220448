#include "libs/store/store_write_json.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

using Json = nlohmann::json;

Json TimeJson(absl::Time t) { return t == kNoTime ? Json(nullptr) : Json(absl::ToUnixMicros(t)); }

absl::Time TimeFrom(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return kNoTime;
  return absl::FromUnixMicros(it->get<int64_t>());
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? std::string() : it->get<std::string>();
}

template <typename T>
T Num(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? T{} : it->get<T>();
}

Json NodeRunJson(const NodeRun& n) {
  return Json{{"execution_id", n.execution_id},
              {"epoch", n.epoch},
              {"run_key", n.run_key},
              {"node_id", n.node_id},
              {"node_name", n.node_name},
              {"node_type", n.node_type},
              {"status", std::string(ToString(n.status))},
              {"attempt", n.attempt},
              {"run_index", n.run_index},
              {"input", n.input_json},
              {"output", n.output_json},
              {"error", n.error_json},
              {"started_at", TimeJson(n.started_at)},
              {"finished_at", TimeJson(n.finished_at)}};
}

absl::StatusOr<NodeRun> NodeRunFrom(const Json& j) {
  NodeRun n;
  n.execution_id = Str(j, "execution_id");
  n.epoch = Num<int64_t>(j, "epoch");
  n.run_key = Str(j, "run_key");
  n.node_id = Str(j, "node_id");
  n.node_name = Str(j, "node_name");
  n.node_type = Str(j, "node_type");
  NDX_ASSIGN_OR_RETURN(n.status, ParseNodeStatus(Str(j, "status")));
  n.attempt = Num<int32_t>(j, "attempt");
  n.run_index = Num<int32_t>(j, "run_index");
  n.input_json = Str(j, "input");
  n.output_json = Str(j, "output");
  n.error_json = Str(j, "error");
  n.started_at = TimeFrom(j, "started_at");
  n.finished_at = TimeFrom(j, "finished_at");
  return n;
}

struct ToJsonVisitor {
  Json& out;
  void operator()(const NewExecution& e) {
    out["t"] = "create";
    out["w"] = Json{{"id", e.id},
                    {"workflow_id", e.workflow_id},
                    {"workflow_name", e.workflow_name},
                    {"workspace_id", e.workspace_id},
                    {"user_id", e.user_id},
                    {"request_id", e.request_id},
                    {"trigger_node_id", e.trigger_node_id},
                    {"trigger_data", e.trigger_data_json},
                    {"workflow_snapshot", e.workflow_snapshot_json},
                    {"mode", e.mode},
                    {"queue", e.queue},
                    {"retry_of_execution_id", e.retry_of_execution_id},
                    {"created_at", TimeJson(e.created_at)}};
  }
  void operator()(const EnqueueFailure& f) {
    out["t"] = "enqueue_failed";
    out["w"] =
        Json{{"execution_id", f.execution_id}, {"error", f.error_json}, {"at", TimeJson(f.at)}};
  }
  void operator()(const AttemptStart& s) {
    out["t"] = "start";
    out["w"] = Json{{"execution_id", s.execution_id},
                    {"epoch", s.epoch},
                    {"attempt", s.attempt},
                    {"worker_id", s.worker_id},
                    {"claimed_at", TimeJson(s.claimed_at)}};
  }
  void operator()(const std::vector<NodeRun>& runs) {
    out["t"] = "nodes";
    Json list = Json::array();
    for (const NodeRun& n : runs) list.push_back(NodeRunJson(n));
    out["w"] = Json{{"runs", std::move(list)}};
  }
  void operator()(const ExecutionFinish& f) {
    out["t"] = "finish";
    out["w"] = Json{{"execution_id", f.execution_id},
                    {"epoch", f.epoch},
                    {"status", std::string(ToString(f.status))},
                    {"error", f.error_json},
                    {"finished_at", TimeJson(f.finished_at)}};
  }
};

absl::StatusOr<OutboxOp> Parse(const Json& j) {
  OutboxOp op;
  if (!j.is_object() || Num<int>(j, "v") != 1) {
    return absl::InvalidArgumentError("not an outbox op of version 1");
  }
  op.op_id = Str(j, "op");
  const std::string type = Str(j, "t");
  const Json& w = j.at("w");
  if (type == "create") {
    NewExecution e;
    e.id = Str(w, "id");
    e.workflow_id = Str(w, "workflow_id");
    e.workflow_name = Str(w, "workflow_name");
    e.workspace_id = Str(w, "workspace_id");
    e.user_id = Str(w, "user_id");
    e.request_id = Str(w, "request_id");
    e.trigger_node_id = Str(w, "trigger_node_id");
    e.trigger_data_json = Str(w, "trigger_data");
    e.workflow_snapshot_json = Str(w, "workflow_snapshot");
    e.mode = Str(w, "mode");
    e.queue = Str(w, "queue");
    e.retry_of_execution_id = Str(w, "retry_of_execution_id");
    e.created_at = TimeFrom(w, "created_at");
    op.write = std::move(e);
  } else if (type == "enqueue_failed") {
    op.write = EnqueueFailure{Str(w, "execution_id"), Str(w, "error"), TimeFrom(w, "at")};
  } else if (type == "start") {
    op.write =
        AttemptStart{Str(w, "execution_id"), Num<int64_t>(w, "epoch"), Num<int32_t>(w, "attempt"),
                     Str(w, "worker_id"), TimeFrom(w, "claimed_at")};
  } else if (type == "nodes") {
    std::vector<NodeRun> runs;
    for (const Json& n : w.at("runs")) {
      NDX_ASSIGN_OR_RETURN(NodeRun run, NodeRunFrom(n));
      runs.push_back(std::move(run));
    }
    op.write = std::move(runs);
  } else if (type == "finish") {
    NDX_ASSIGN_OR_RETURN(ExecutionStatus status, ParseExecutionStatus(Str(w, "status")));
    op.write = ExecutionFinish{Str(w, "execution_id"), Num<int64_t>(w, "epoch"), status,
                               Str(w, "error"), TimeFrom(w, "finished_at")};
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown outbox op type \"", type, "\""));
  }
  if (op.op_id.empty()) return absl::InvalidArgumentError("outbox op without an op id");
  return op;
}

}  // namespace

std::string NewOpId() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  return absl::StrFormat("%016x%016x", rng(), rng());
}

std::string OutboxOpToJson(const OutboxOp& op) {
  Json j = Json::object();
  j["v"] = 1;
  j["op"] = op.op_id;
  std::visit(ToJsonVisitor{j}, op.write);
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<OutboxOp> OutboxOpFromJson(absl::string_view text) {
  try {
    return Parse(Json::parse(text.begin(), text.end()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed outbox op: ", e.what()));
  }
}

}  // namespace ndx::store
