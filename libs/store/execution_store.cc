#include "libs/store/execution_store.h"

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

constexpr std::pair<ExecutionStatus, absl::string_view> kExecutionStatuses[] = {
    {ExecutionStatus::kRunning, "RUNNING"}, {ExecutionStatus::kSuccess, "SUCCESS"},
    {ExecutionStatus::kError, "ERROR"},     {ExecutionStatus::kCancelled, "CANCELLED"},
    {ExecutionStatus::kTimeout, "TIMEOUT"},
};
constexpr std::pair<NodeStatus, absl::string_view> kNodeStatuses[] = {
    {NodeStatus::kWaiting, "WAITING"}, {NodeStatus::kRunning, "RUNNING"},
    {NodeStatus::kSuccess, "SUCCESS"}, {NodeStatus::kError, "ERROR"},
    {NodeStatus::kSkipped, "SKIPPED"}, {NodeStatus::kCancelled, "CANCELLED"},
};

constexpr absl::string_view kTokenVersion = "1";

void Fnv(uint64_t& h, absl::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // A separator that cannot be confused with content, so ("ab","c") != ("a","bc").
  h ^= 0xff;
  h *= 1099511628211ull;
}

absl::Status Required(absl::string_view value, absl::string_view what) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  return absl::OkStatus();
}

absl::Status Json(absl::string_view text, absl::string_view what) {
  if (!IsValidJsonOrEmpty(text)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const NewExecution& e) {
  NDX_RETURN_IF_ERROR(Required(e.id, "execution id"));
  NDX_RETURN_IF_ERROR(Required(e.workflow_id, "workflow id"));
  if (e.created_at == kNoTime) return absl::InvalidArgumentError("created_at is required");
  if (e.mode != "queue" && e.mode != "direct") {
    return absl::InvalidArgumentError(absl::StrCat("mode must be queue or direct, not ", e.mode));
  }
  NDX_RETURN_IF_ERROR(Json(e.trigger_data_json, "trigger data"));
  return Json(e.workflow_snapshot_json, "workflow snapshot");
}

absl::Status Validate(const EnqueueFailure& f) {
  NDX_RETURN_IF_ERROR(Required(f.execution_id, "execution id"));
  if (f.at == kNoTime) return absl::InvalidArgumentError("the failure time is required");
  return Json(f.error_json, "error");
}

absl::Status Validate(const AttemptStart& s) {
  NDX_RETURN_IF_ERROR(Required(s.execution_id, "execution id"));
  if (s.epoch < 0) return absl::InvalidArgumentError("epoch must not be negative");
  if (s.claimed_at == kNoTime) return absl::InvalidArgumentError("claimed_at is required");
  return absl::OkStatus();
}

absl::Status Validate(const std::vector<NodeRun>& runs) {
  for (const NodeRun& r : runs) {
    NDX_RETURN_IF_ERROR(Required(r.execution_id, "execution id"));
    NDX_RETURN_IF_ERROR(Required(r.run_key, "run key"));
    NDX_RETURN_IF_ERROR(Required(r.node_id, "node id"));
    if (r.epoch < 0) return absl::InvalidArgumentError("epoch must not be negative");
    NDX_RETURN_IF_ERROR(Json(r.input_json, "node input"));
    NDX_RETURN_IF_ERROR(Json(r.output_json, "node output"));
    NDX_RETURN_IF_ERROR(Json(r.error_json, "node error"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const ExecutionFinish& f) {
  NDX_RETURN_IF_ERROR(Required(f.execution_id, "execution id"));
  if (f.epoch < 0) return absl::InvalidArgumentError("epoch must not be negative");
  if (!IsTerminal(f.status)) {
    return absl::InvalidArgumentError("FinishExecution needs a terminal status, not RUNNING");
  }
  if (f.finished_at == kNoTime) return absl::InvalidArgumentError("finished_at is required");
  return Json(f.error_json, "error");
}

}  // namespace

absl::string_view ToString(ExecutionStatus status) {
  for (const auto& [s, text] : kExecutionStatuses) {
    if (s == status) return text;
  }
  return "RUNNING";
}

absl::string_view ToString(NodeStatus status) {
  for (const auto& [s, text] : kNodeStatuses) {
    if (s == status) return text;
  }
  return "RUNNING";
}

absl::StatusOr<ExecutionStatus> ParseExecutionStatus(absl::string_view text) {
  for (const auto& [s, t] : kExecutionStatuses) {
    if (t == text) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown execution status \"", text, "\""));
}

absl::StatusOr<NodeStatus> ParseNodeStatus(absl::string_view text) {
  for (const auto& [s, t] : kNodeStatuses) {
    if (t == text) return s;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown node status \"", text, "\""));
}

bool IsTerminal(ExecutionStatus status) { return status != ExecutionStatus::kRunning; }

bool IsStaleEpoch(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted &&
         pg::SqlStateOf(status) == std::string(pg::kStaleEpochSqlState);
}

bool IsTransientStoreError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    case absl::StatusCode::kAborted:
      return !IsStaleEpoch(status);
    default:
      return false;
  }
}

absl::Status ExecutionStore::Apply(const StoreWrite& write) {
  struct Visitor {
    ExecutionStore& store;
    absl::Status operator()(const NewExecution& w) { return store.CreateExecution(w); }
    absl::Status operator()(const EnqueueFailure& w) { return store.MarkEnqueueFailed(w); }
    absl::Status operator()(const AttemptStart& w) { return store.StartAttempt(w); }
    absl::Status operator()(const std::vector<NodeRun>& w) { return store.RecordNodeRuns(w); }
    absl::Status operator()(const ExecutionFinish& w) { return store.FinishExecution(w); }
  };
  return std::visit(Visitor{*this}, write);
}

absl::StatusOr<int64_t> PruneHistory(ExecutionStore& store, absl::Time now,
                                     absl::Duration retention, int batch_size, int max_batches) {
  if (retention <= absl::ZeroDuration() || batch_size < 1 || max_batches < 1) {
    return absl::InvalidArgumentError(
        "PruneHistory needs a positive retention, batch size and batch count");
  }
  const absl::Time cutoff = now - retention;
  int64_t total = 0;
  for (int i = 0; i < max_batches; ++i) {
    NDX_ASSIGN_OR_RETURN(int64_t n, store.Prune(cutoff, batch_size));
    total += n;
    if (n < batch_size) break;
  }
  return total;
}

absl::StatusOr<int> EffectivePageSize(int page_size) {
  if (page_size < 0) return absl::InvalidArgumentError("page_size must not be negative");
  if (page_size == 0) return 50;
  return page_size > 100 ? 100 : page_size;
}

uint64_t FilterFingerprint(const ListQuery& query) {
  uint64_t h = 14695981039346656037ull;
  Fnv(h, query.workspace_id);
  Fnv(h, query.workflow_id);
  // Statuses as a set: order and repeats do not change what matches.
  for (const auto& [s, text] : kExecutionStatuses) {
    for (ExecutionStatus q : query.statuses) {
      if (q == s) {
        Fnv(h, text);
        break;
      }
    }
  }
  Fnv(h,
      query.created_after == kNoTime ? "-" : absl::StrCat(absl::ToUnixMicros(query.created_after)));
  Fnv(h, query.created_before == kNoTime ? "-"
                                         : absl::StrCat(absl::ToUnixMicros(query.created_before)));
  return h;
}

std::string EncodePageToken(const PageCursor& cursor, const ListQuery& query) {
  const std::string raw = absl::StrCat(kTokenVersion, "|", absl::Hex(FilterFingerprint(query)), "|",
                                       absl::ToUnixMicros(cursor.created_at), "|", cursor.id);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<PageCursor> DecodePageToken(const ListQuery& query) {
  std::string raw;
  const absl::Status bad = absl::InvalidArgumentError("page_token is malformed");
  if (!absl::WebSafeBase64Unescape(query.page_token, &raw)) return bad;
  std::vector<absl::string_view> parts = absl::StrSplit(raw, absl::MaxSplits('|', 3));
  if (parts.size() != 4 || parts[0] != kTokenVersion || parts[3].empty()) return bad;
  uint64_t fingerprint = 0;
  int64_t micros = 0;
  if (!absl::SimpleHexAtoi(parts[1], &fingerprint) || !absl::SimpleAtoi(parts[2], &micros)) {
    return bad;
  }
  if (fingerprint != FilterFingerprint(query)) {
    return absl::InvalidArgumentError(
        "page_token was made for other filters; repeat the first request's filters");
  }
  return PageCursor{absl::FromUnixMicros(micros), std::string(parts[3])};
}

absl::Status ValidateWrite(const StoreWrite& write) {
  return std::visit([](const auto& w) { return Validate(w); }, write);
}

bool IsValidJsonOrEmpty(absl::string_view text) {
  return text.empty() || nlohmann::json::accept(text.begin(), text.end());
}

}  // namespace ndx::store
