#include "services/queue/queue_service.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/grpc_status.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/service/history.h"
#include "libs/service/worker_registry.h"
#include "nlohmann/json.hpp"

namespace ndx::queue {
namespace {

using Json = nlohmann::ordered_json;
using google::protobuf::util::TimeUtil;

constexpr char kQueuesKey[] = "ndx:queues";

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t ms = absl::ToUnixMillis(t);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

v1::ExecutionState ToProto(JobState s) {
  switch (s) {
    case JobState::kWaiting:
      return v1::EXECUTION_STATE_WAITING;
    case JobState::kDelayed:
      return v1::EXECUTION_STATE_DELAYED;
    case JobState::kActive:
      return v1::EXECUTION_STATE_ACTIVE;
    case JobState::kCancelling:
      return v1::EXECUTION_STATE_CANCELLING;
    case JobState::kCompleted:
      return v1::EXECUTION_STATE_COMPLETED;
    case JobState::kFailed:
      return v1::EXECUTION_STATE_FAILED;
    case JobState::kTimedOut:
      return v1::EXECUTION_STATE_TIMED_OUT;
    case JobState::kCancelled:
      return v1::EXECUTION_STATE_CANCELLED;
  }
  return v1::EXECUTION_STATE_UNSPECIFIED;
}

std::string StringOr(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string wf_id_or_new(const v1::ExecuteWorkflowRequest& r) {
  if (r.has_workflow() && !r.workflow().id().empty()) return r.workflow().id();
  if (!r.workflow_id().empty()) return r.workflow_id();
  return "new";  // NodeDrop's id for an unsaved workflow
}

v1::ExecutionState StateOfStatus(store::ExecutionStatus s) {
  switch (s) {
    case store::ExecutionStatus::kRunning:
      return v1::EXECUTION_STATE_ACTIVE;
    case store::ExecutionStatus::kSuccess:
      return v1::EXECUTION_STATE_COMPLETED;
    case store::ExecutionStatus::kError:
      return v1::EXECUTION_STATE_FAILED;
    case store::ExecutionStatus::kCancelled:
      return v1::EXECUTION_STATE_CANCELLED;
    case store::ExecutionStatus::kTimeout:
      return v1::EXECUTION_STATE_TIMED_OUT;
  }
  return v1::EXECUTION_STATE_UNSPECIFIED;
}

std::vector<store::ExecutionStatus> StatusesOf(const google::protobuf::RepeatedField<int>& states) {
  std::vector<store::ExecutionStatus> out;
  auto add = [&](store::ExecutionStatus s) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  for (int st : states) {
    switch (static_cast<v1::ExecutionState>(st)) {
      case v1::EXECUTION_STATE_COMPLETED:
        add(store::ExecutionStatus::kSuccess);
        break;
      case v1::EXECUTION_STATE_FAILED:
        add(store::ExecutionStatus::kError);
        break;
      case v1::EXECUTION_STATE_CANCELLED:
        add(store::ExecutionStatus::kCancelled);
        break;
      case v1::EXECUTION_STATE_TIMED_OUT:
        add(store::ExecutionStatus::kTimeout);
        break;
      default:
        add(store::ExecutionStatus::kRunning);
        break;
    }
  }
  return out;
}

v1::NodeState NodeStateOf(store::NodeStatus s) {
  switch (s) {
    case store::NodeStatus::kRunning:
      return v1::NODE_STATE_RUNNING;
    case store::NodeStatus::kWaiting:
      return v1::NODE_STATE_WAITING;
    case store::NodeStatus::kSuccess:
      return v1::NODE_STATE_COMPLETED;
    case store::NodeStatus::kError:
      return v1::NODE_STATE_FAILED;
    case store::NodeStatus::kSkipped:
      return v1::NODE_STATE_SKIPPED;
    case store::NodeStatus::kCancelled:
      return v1::NODE_STATE_CANCELLED;
  }
  return v1::NODE_STATE_UNSPECIFIED;
}

void FillError(const std::string& error_json, v1::ExecutionError* e) {
  const Json err = Json::parse(error_json, nullptr, false);
  if (err.is_object()) {
    e->set_message(StringOr(err, "message"));
    e->set_code(StringOr(err, "code"));
    e->set_node_id(StringOr(err, "nodeId"));
    e->set_node_name(StringOr(err, "nodeName"));
    e->set_transient(err.value("transient", false));
  } else {
    e->set_message(error_json);
  }
}

void AddNodeRuns(const store::ExecutionRecord& record, v1::Execution& out) {
  out.clear_node_executions();
  for (const store::NodeRunRecord& r : record.node_runs) {
    v1::NodeExecution* n = out.add_node_executions();
    n->set_node_id(r.run.node_id);
    n->set_node_name(r.run.node_name);
    n->set_node_type(r.run.node_type);
    n->set_state(NodeStateOf(r.run.status));
    n->set_output_json(r.run.output_json);
    if (!r.run.error_json.empty()) FillError(r.run.error_json, n->mutable_error());
    if (r.run.started_at != store::kNoTime) SetTime(r.run.started_at, n->mutable_started_at());
    if (r.run.finished_at != store::kNoTime) {
      SetTime(r.run.finished_at, n->mutable_finished_at());
      if (r.run.started_at != store::kNoTime) {
        n->set_duration_ms(absl::ToInt64Milliseconds(r.run.finished_at - r.run.started_at));
      }
    }
    n->set_attempt(r.run.attempt);
    n->set_run_index(r.run.run_index);
  }
}

}  // namespace

void FillExecution(const store::ExecutionRecord& r, v1::ExecutionView view, v1::Execution& out) {
  out.set_id(r.id);
  out.set_workflow_id(r.workflow_id);
  out.set_workflow_name(r.workflow_name);
  out.set_workspace_id(r.workspace_id);
  out.set_user_id(r.user_id);
  out.set_request_id(r.request_id);
  out.set_mode(r.mode == "direct" ? v1::EXECUTION_MODE_DIRECT : v1::EXECUTION_MODE_QUEUE);
  out.set_queue(r.queue);
  out.set_state(StateOfStatus(r.status));
  out.set_attempts(r.attempts);
  out.set_worker_id(r.worker_id);
  out.set_trigger_node_id(r.trigger_node_id);
  if (view != v1::EXECUTION_VIEW_BASIC) out.set_trigger_data_json(r.trigger_data_json);
  out.set_retry_of_execution_id(r.retry_of_execution_id);
  if (r.created_at != store::kNoTime) SetTime(r.created_at, out.mutable_created_at());
  if (r.claimed_at != store::kNoTime) SetTime(r.claimed_at, out.mutable_started_at());
  if (r.finished_at != store::kNoTime) SetTime(r.finished_at, out.mutable_finished_at());
  if (r.updated_at != store::kNoTime) SetTime(r.updated_at, out.mutable_updated_at());
  if (!r.error_json.empty()) FillError(r.error_json, out.mutable_error());
  AddNodeRuns(r, out);
}

void FillExecution(const JobInfo& info, const std::string& queue, v1::ExecutionView view,
                   v1::Execution& out) {
  out.set_id(info.id);
  out.set_queue(queue);
  out.set_mode(absl::EndsWith(queue, kDirectQueueSuffix) ? v1::EXECUTION_MODE_DIRECT
                                                         : v1::EXECUTION_MODE_QUEUE);
  out.set_state(ToProto(info.state));
  out.set_priority(info.priority);
  out.set_attempts(info.attempts);
  out.set_max_attempts(info.max_attempts);
  out.set_stall_count(info.stall_count);
  out.set_workspace_id(info.workspace);
  out.set_worker_id(info.worker);
  out.set_retry_of_execution_id(info.retry_of);
  out.set_cancel_requested(info.state == JobState::kCancelling ||
                           info.state == JobState::kCancelled);
  SetDuration(info.timeout, out.mutable_timeout());
  SetTime(info.created, out.mutable_created_at());
  if (info.finished) SetTime(*info.finished, out.mutable_finished_at());
  if (info.deadline) SetTime(*info.deadline, out.mutable_deadline());
  const Json payload = Json::parse(info.payload, nullptr, false);
  if (payload.is_object()) {
    out.set_workflow_id(StringOr(payload, "workflowId"));
    out.set_workflow_name(StringOr(payload, "workflowName"));
    out.set_user_id(StringOr(payload, "userId"));
    out.set_request_id(StringOr(payload, "requestId"));
    out.set_trigger_node_id(StringOr(payload, "triggerNodeId"));
    out.set_single_node_mode(payload.value("singleNodeMode", false));
    if (view != v1::EXECUTION_VIEW_BASIC && payload.contains("triggerData")) {
      out.set_trigger_data_json(payload["triggerData"].dump());
    }
  }
  if (!info.error_json.empty()) FillError(info.error_json, out.mutable_error());
}

struct QueueServiceImpl::Waiter {
  grpc::CallbackServerContext* context;
  grpc::ServerUnaryReactor* reactor;
  v1::Execution* response;
  std::string id;
  std::string workspace;
  v1::ExecutionView view;
  absl::Time deadline;
};

QueueServiceImpl::QueueServiceImpl(redis::RedisPool& pool, Options options, common::Clock& clock)
    : pool_(pool), options_(std::move(options)), clock_(clock) {
  waiter_thread_ = std::thread([this] { WaiterLoop(); });
}

QueueServiceImpl::~QueueServiceImpl() {
  {
    absl::MutexLock lock(&waiters_mu_);
    stopping_ = true;
  }
  waiter_thread_.join();
}

absl::StatusOr<QueueServiceImpl::Queue*> QueueServiceImpl::SlotFor(const std::string& requested) {
  const std::string name = requested.empty() ? options_.queue.name : requested;
  {
    absl::MutexLock lock(&mu_);
    auto it = queues_.find(name);
    if (it != queues_.end()) return &it->second;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat("queue: \"", name, "\" is not 1-64 of A-Z a-z 0-9 - _ ."));
    }
  }
  if (name.size() > 64) return absl::InvalidArgumentError("queue: longer than 64 characters");
  {
    NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(absl::Seconds(2)));
    NDX_RETURN_IF_ERROR(redis->Command({"SADD", kQueuesKey, name}).status());
  }
  QueueOptions o = options_.queue;
  o.name = name;
  // With a history, ends wait on the unrecorded index (keys without TTL) until the history has
  // them (see QueueOptions::history_pending).
  if (options_.store != nullptr) o.history_pending = true;
  absl::MutexLock lock(&mu_);
  Queue& slot = queues_[name];
  if (slot.queue == nullptr) {
    slot.queue = std::make_unique<RedisQueue>(pool_, std::move(o), clock_);
    slot.batcher = std::make_unique<EnqueueBatcher>(*slot.queue);
  }
  return &slot;
}

size_t QueueServiceImpl::PendingEnqueues() {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (auto& [name, q] : queues_) n += q.batcher->pending();
  return n;
}

absl::StatusOr<RedisQueue*> QueueServiceImpl::QueueFor(const std::string& name) {
  NDX_ASSIGN_OR_RETURN(Queue * slot, SlotFor(name));
  return slot->queue.get();
}

absl::StatusOr<std::pair<RedisQueue*, JobInfo>> QueueServiceImpl::Find(
    const std::string& id, const std::string& workspace) {
  if (id.empty()) return absl::InvalidArgumentError("execution_id is required");
  std::vector<std::string> names = {options_.queue.name};
  {
    NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(absl::Seconds(2)));
    NDX_ASSIGN_OR_RETURN(redis::RedisReply members, redis->Command({"SMEMBERS", kQueuesKey}));
    for (const redis::RedisReply& m : members.elements()) {
      if (m.str() != options_.queue.name) names.push_back(m.str());
    }
  }
  for (const std::string& name : names) {
    NDX_ASSIGN_OR_RETURN(RedisQueue * q, QueueFor(name));
    absl::StatusOr<JobInfo> info = q->Get(id);
    if (info.ok()) {
      if (!workspace.empty() && info->workspace != workspace) break;  // not theirs: NOT_FOUND
      return std::make_pair(q, *std::move(info));
    }
    if (info.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(absl::StrCat("execution_id: \"", id, "\" is not an id"));
    }
    if (info.status().code() != absl::StatusCode::kNotFound) return info.status();
  }
  return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
}

absl::Status QueueServiceImpl::Execute(const v1::ExecuteWorkflowRequest& request,
                                       v1::ExecuteWorkflowResponse& response) {
  absl::Status out;
  absl::Notification done;
  ExecuteAsync(request, response, absl::InfiniteFuture(), [&out, &done](absl::Status s) {
    out = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

void QueueServiceImpl::ExecuteAsync(const v1::ExecuteWorkflowRequest& request,
                                    v1::ExecuteWorkflowResponse& response, absl::Time deadline,
                                    std::function<void(absl::Status)> done) {
  absl::StatusOr<Prepared> prepared = Prepare(request, response);
  if (!prepared.ok()) return done(prepared.status());
  if (prepared->answered) return done(absl::OkStatus());
  Queue* queue = prepared->queue;
  const bool use_queue = prepared->use_queue;
  store::ExecutionStore* history = prepared->history;
  const std::string id = prepared->job.id;
  const std::optional<absl::Time> run_at = prepared->job.run_at;
  queue->batcher->Submit(
      std::move(prepared->job), deadline,
      [this, queue, use_queue, history, id, run_at, &response,
       done = std::move(done)](absl::StatusOr<EnqueueResult> enqueued) {
        done(Finish(*queue->queue, use_queue, history, id, run_at, std::move(enqueued), response));
      });
}

absl::StatusOr<QueueServiceImpl::Prepared> QueueServiceImpl::Prepare(
    const v1::ExecuteWorkflowRequest& request, v1::ExecuteWorkflowResponse& response) {
  const bool use_queue =
      request.has_use_queue() ? request.use_queue() : options_.default_mode != "direct";
  if (!use_queue && options_.direct_queue.empty()) {
    return absl::UnimplementedError(
        "use_queue=false (direct mode) is not enabled on this server; send use_queue=true");
  }
  if (request.priority() < -1000 || request.priority() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("priority: ", request.priority(), " is outside -1000..1000"));
  }
  if (request.request_id().size() > 128) {
    return absl::InvalidArgumentError("request_id: longer than 128 characters");
  }
  // Direct mode: the executions run on the runners embedded in the ndx-queue processes (their own
  // queue), with the same engine, checkpoints, events and records as on workers.
  NDX_ASSIGN_OR_RETURN(Queue * queue, SlotFor(use_queue ? request.queue() : options_.direct_queue));
  RedisQueue* q = queue->queue.get();
  // A request that names a workflow instead of carrying it: load it (NodeDrop's `workflows`).
  const v1::ExecuteWorkflowRequest* effective = &request;
  v1::ExecuteWorkflowRequest loaded;
  if (!request.has_workflow() && !request.workflow_id().empty() && options_.workflow_loader) {
    NDX_ASSIGN_OR_RETURN(v1::Workflow wf,
                         options_.workflow_loader(request.workflow_id(), request.workspace_id()));
    loaded = request;
    *loaded.mutable_workflow() = std::move(wf);
    effective = &loaded;
  }
  NDX_ASSIGN_OR_RETURN(JobPayload payload,
                       BuildJobPayload(*effective, q->options().name, options_.validator));
  Prepared prepared;
  prepared.queue = queue;
  prepared.use_queue = use_queue;
  NewJob& job = prepared.job;
  job.id = NewExecutionId();
  if (!request.request_id().empty()) {
    // Scoped by workspace, so two tenants' request ids never collide.
    job.idempotency_key = absl::StrCat(request.workspace_id(), ":", request.request_id());
  }
  job.payload = std::move(payload.json);
  job.priority = request.priority();
  job.workspace = request.workspace_id();
  if (request.has_start_at()) {
    job.run_at = absl::FromUnixSeconds(request.start_at().seconds()) +
                 absl::Nanoseconds(request.start_at().nanos());
    if (*job.run_at > clock_.Now() + q->options().state_ttl) {
      return absl::InvalidArgumentError(
          "start_at: later than the state TTL (EXECUTION_STATE_TTL) allows");
    }
  }
  if (request.has_timeout()) {
    if (ToDuration(request.timeout()) < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("timeout: negative");
    }
    job.timeout = ToDuration(request.timeout());
  }
  if (request.has_max_attempts()) job.max_attempts = request.max_attempts();
  if (request.has_backoff()) job.backoff = ToDuration(request.backoff());
  // A job Enqueue would refuse (attempts, size, workspace...) is refused before the history row
  // is written: a request that was answered INVALID_ARGUMENT leaves no execution behind.
  NDX_RETURN_IF_ERROR(q->CheckJob(job));
  store::ExecutionStore* history = payload.save_to_history ? options_.store : nullptr;
  if (history != nullptr && !job.idempotency_key.empty()) {
    // A repeated request: answer with the first execution, and write no second row.
    NDX_ASSIGN_OR_RETURN(std::optional<std::string> first,
                         q->LookupIdempotency(job.idempotency_key));
    if (first) {
      response.set_execution_id(*first);
      response.set_deduplicated(true);
      response.set_mode(use_queue ? v1::EXECUTION_MODE_QUEUE : v1::EXECUTION_MODE_DIRECT);
      absl::StatusOr<JobInfo> info = q->Get(*first);
      response.set_state(info.ok() ? ToProto(info->state) : v1::EXECUTION_STATE_UNSPECIFIED);
      prepared.answered = true;
      return prepared;
    }
  }
  if (history != nullptr) {
    // The row exists before the job can run (and says so if the enqueue fails).
    const absl::Status s = history->CreateExecution(
        {.id = job.id,
         .workflow_id = wf_id_or_new(request),
         .workflow_name = request.has_workflow() ? request.workflow().name() : "",
         .workspace_id = request.workspace_id(),
         .user_id = request.user_id(),
         .request_id = request.request_id(),
         .trigger_node_id = payload.trigger_node_id,
         .trigger_data_json = request.trigger_data_json(),
         .workflow_snapshot_json = payload.workflow_json,
         .mode = use_queue ? "queue" : "direct",
         .queue = q->options().name,
         .created_at = clock_.Now()});
    if (s.code() == absl::StatusCode::kUnavailable) {
      return absl::UnavailableError(absl::StrCat(
          "the execution history cannot take more executions now (", s.message(), ")"));
    }
    if (!s.ok())
      log::Warn("history: execution row not written", {{"execution", job.id}, {"error", s}});
  }
  prepared.history = history;
  return prepared;
}

absl::Status QueueServiceImpl::Finish(RedisQueue& queue, bool use_queue,
                                      store::ExecutionStore* history, const std::string& id,
                                      std::optional<absl::Time> run_at,
                                      absl::StatusOr<EnqueueResult> enqueued,
                                      v1::ExecuteWorkflowResponse& response) {
  if (!enqueued.ok()) {
    if (history != nullptr) {
      (void)history->MarkEnqueueFailed(
          {id,
           nlohmann::json{{"message", std::string(enqueued.status().message())},
                          {"code", "ENQUEUE_FAILED"}}
               .dump(),
           clock_.Now()});
    }
    return enqueued.status();
  }
  const EnqueueResult& result = *enqueued;
  if (history != nullptr && result.duplicate) {
    // Lost a race with an identical request: this row runs nothing.
    (void)history->MarkEnqueueFailed(
        {id,
         nlohmann::json{
             {"message", absl::StrCat("duplicate request_id: execution ", result.id, " runs it")},
             {"code", "DUPLICATE_REQUEST"}}
             .dump(),
         clock_.Now()});
  }
  if (options_.metrics != nullptr) {
    options_.metrics->Enqueued(queue.options().name, result.duplicate);
  }
  response.set_execution_id(result.id);
  response.set_deduplicated(result.duplicate);
  response.set_mode(use_queue ? v1::EXECUTION_MODE_QUEUE : v1::EXECUTION_MODE_DIRECT);
  if (result.duplicate) {
    absl::StatusOr<JobInfo> info = queue.Get(result.id);
    response.set_state(info.ok() ? ToProto(info->state) : v1::EXECUTION_STATE_UNSPECIFIED);
  } else {
    response.set_state(run_at && *run_at > clock_.Now() ? v1::EXECUTION_STATE_DELAYED
                                                        : v1::EXECUTION_STATE_WAITING);
  }
  return absl::OkStatus();
}

absl::Status QueueServiceImpl::Get(const std::string& id, const std::string& workspace,
                                   v1::ExecutionView view, v1::Execution& out) {
  // Redis has the live state; PostgreSQL has the node runs, and the history after Redis forgot.
  absl::StatusOr<std::pair<RedisQueue*, JobInfo>> found = Find(id, workspace);
  std::optional<store::ExecutionRecord> record;
  if (options_.store != nullptr) {
    absl::StatusOr<store::ExecutionRecord> r =
        options_.store->GetExecution(id, workspace,
                                     {.include_node_runs = true,
                                      .include_node_outputs = view != v1::EXECUTION_VIEW_BASIC,
                                      .include_snapshot = false});
    if (r.ok()) {
      record = *std::move(r);
    } else if (r.status().code() != absl::StatusCode::kNotFound) {
      log::Debug("history read failed; answering from Redis",
                 {{"execution", id}, {"error", r.status()}});
    }
  }
  if (found.ok()) {
    FillExecution(found->second, found->first->options().name, view, out);
    if (record) AddNodeRuns(*record, out);
    return absl::OkStatus();
  }
  if (record) {
    FillExecution(*record, view, out);
    return absl::OkStatus();
  }
  return found.status();
}

absl::Status QueueServiceImpl::List(const v1::ListExecutionsRequest& request,
                                    v1::ListExecutionsResponse& out) {
  if (options_.store == nullptr) {
    return absl::FailedPreconditionError("this server keeps no execution history");
  }
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size: negative");
  if (request.skip() < 0) return absl::InvalidArgumentError("skip: negative");
  store::ListQuery q;
  q.workspace_id = request.workspace_id();
  q.workflow_id = request.workflow_id();
  q.statuses = StatusesOf(request.states());
  if (request.has_created_after()) {
    q.created_after = absl::FromUnixSeconds(request.created_after().seconds()) +
                      absl::Nanoseconds(request.created_after().nanos());
  }
  if (request.has_created_before()) {
    q.created_before = absl::FromUnixSeconds(request.created_before().seconds()) +
                       absl::Nanoseconds(request.created_before().nanos());
  }
  q.page_size = request.page_size();
  q.page_token = request.page_token();
  q.skip = request.skip();
  q.count_total = request.page_token().empty();
  NDX_ASSIGN_OR_RETURN(store::ExecutionPage page, options_.store->ListExecutions(q));
  const v1::ExecutionView view =
      request.view() == v1::EXECUTION_VIEW_UNSPECIFIED ? v1::EXECUTION_VIEW_BASIC : request.view();
  for (const store::ExecutionRecord& r : page.executions) {
    v1::Execution* e = out.add_executions();
    FillExecution(r, view, *e);
    if (r.status == store::ExecutionStatus::kRunning && !r.queue.empty()) {
      // Running: the live state (waiting, delayed, active, cancelling) comes from Redis.
      absl::StatusOr<RedisQueue*> q = QueueFor(r.queue);
      if (q.ok()) {
        absl::StatusOr<JobInfo> live = (*q)->Get(r.id);
        if (live.ok()) e->set_state(ToProto(live->state));
      }
    }
  }
  out.set_next_page_token(page.next_page_token);
  if (page.total) out.set_total_size(*page.total);
  return absl::OkStatus();
}

absl::StatusOr<std::string> QueueServiceImpl::Locate(const std::string& id,
                                                     const std::string& workspace) {
  NDX_ASSIGN_OR_RETURN(auto found, Find(id, workspace));
  return found.first->options().name;
}

absl::Status QueueServiceImpl::Cancel(const v1::CancelExecutionRequest& request,
                                      v1::Execution& out) {
  NDX_ASSIGN_OR_RETURN(auto found, Find(request.execution_id(), request.workspace_id()));
  NDX_ASSIGN_OR_RETURN(JobState state, found.first->Cancel(request.execution_id()));
  if (state == JobState::kCancelled && options_.store != nullptr) {
    // Logs a failure; the end then stays on the unrecorded index for housekeeping.
    service::RecordEnds(*found.first, *options_.store, {request.execution_id()});
  }
  log::Info("execution cancel requested",
            {{"execution", request.execution_id()}, {"reason", request.reason()}});
  return Get(request.execution_id(), request.workspace_id(), v1::EXECUTION_VIEW_BASIC, out);
}

absl::Status QueueServiceImpl::Delete(const v1::DeleteExecutionRequest& request) {
  const std::string& id = request.execution_id();
  absl::StatusOr<std::pair<RedisQueue*, JobInfo>> live = Find(id, request.workspace_id());
  if (!live.ok() && live.status().code() != absl::StatusCode::kNotFound) return live.status();
  if (live.ok() && !IsTerminal(live->second.state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("execution ", id, " is ", JobStateName(live->second.state),
                     "; cancel it and wait until it has ended before deleting it"));
  }
  // The row first: when PostgreSQL is down nothing is deleted, and a repeat finishes the job.
  bool found = live.ok();
  if (options_.store != nullptr) {
    // Redis holds the live state: when it says the execution ended, a RUNNING row only lags.
    const absl::Status s =
        options_.store->DeleteExecution(id, request.workspace_id(), /*even_if_running=*/live.ok());
    if (s.ok()) {
      found = true;
    } else if (s.code() != absl::StatusCode::kNotFound) {
      return s;
    }
  }
  if (live.ok()) {
    const absl::Status s = live->first->Delete(id);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return s;
  }
  if (!found) return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
  log::Info("execution deleted", {{"execution", id}});
  return absl::OkStatus();
}

absl::Status QueueServiceImpl::Workers(const v1::ListWorkersRequest& request,
                                       v1::ListWorkersResponse& out) {
  // Workers stamp their reports with their wall clock; compare with ours (not clock_, which tests
  // may fake).
  service::WorkerRegistry registry(pool_);
  NDX_ASSIGN_OR_RETURN(std::vector<v1::WorkerStatus> workers, registry.List(absl::Now()));
  for (v1::WorkerStatus& w : workers) {
    if (!request.workspace_id().empty()) {
      auto* running = w.mutable_running_executions();
      running->erase(std::remove_if(running->begin(), running->end(),
                                    [&](const v1::RunningExecution& r) {
                                      return r.workspace_id() != request.workspace_id();
                                    }),
                     running->end());
    }
    *out.add_workers() = std::move(w);
  }
  return absl::OkStatus();
}

absl::Status QueueServiceImpl::Retry(const v1::RetryExecutionRequest& request, v1::Execution& out) {
  NDX_ASSIGN_OR_RETURN(auto found, Find(request.execution_id(), request.workspace_id()));
  const std::string idem = request.request_id().empty()
                               ? ""
                               : absl::StrCat(request.workspace_id(), ":", request.request_id());
  const std::string new_id = NewExecutionId();
  const bool save = service::SaveToHistory(found.second.payload);
  store::ExecutionStore* history = save ? options_.store : nullptr;
  if (history != nullptr) {
    const nlohmann::json p = nlohmann::json::parse(found.second.payload, nullptr, false);
    const auto str = [&](const char* k) {
      return p.is_object() && p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : "";
    };
    const absl::Status s = history->CreateExecution(
        {.id = new_id,
         .workflow_id = str("workflowId").empty() ? "new" : str("workflowId"),
         .workflow_name = str("workflowName"),
         .workspace_id = found.second.workspace,
         .user_id = request.user_id().empty() ? str("userId") : request.user_id(),
         .request_id = request.request_id(),
         .trigger_node_id = str("triggerNodeId"),
         .trigger_data_json =
             p.is_object() && p.contains("triggerData") ? p["triggerData"].dump() : "",
         .workflow_snapshot_json =
             p.is_object() && p.contains("workflow") ? p["workflow"].dump() : "",
         .mode =
             absl::EndsWith(found.first->options().name, kDirectQueueSuffix) ? "direct" : "queue",
         .queue = found.first->options().name,
         .retry_of_execution_id = request.execution_id(),
         .created_at = clock_.Now()});
    if (s.code() == absl::StatusCode::kUnavailable) {
      return absl::UnavailableError(absl::StrCat(
          "the execution history cannot take more executions now (", s.message(), ")"));
    }
  }
  absl::StatusOr<EnqueueResult> r = found.first->Retry(request.execution_id(), new_id, idem);
  if (!r.ok() && history != nullptr) {
    (void)history->MarkEnqueueFailed(
        {new_id,
         nlohmann::json{{"message", std::string(r.status().message())}, {"code", "RETRY_FAILED"}}
             .dump(),
         clock_.Now()});
  }
  if (!r.ok()) return r.status();
  return Get(r->id, request.workspace_id(), v1::EXECUTION_VIEW_BASIC, out);
}

absl::Status QueueServiceImpl::Stats(const v1::GetQueueStatsRequest& request,
                                     v1::GetQueueStatsResponse& out) {
  std::vector<std::string> names;
  if (!request.queue().empty()) {
    names.push_back(request.queue());
  } else {
    NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(absl::Seconds(2)));
    NDX_ASSIGN_OR_RETURN(redis::RedisReply members, redis->Command({"SMEMBERS", kQueuesKey}));
    names.push_back(options_.queue.name);
    for (const redis::RedisReply& m : members.elements()) {
      if (m.str() != options_.queue.name) names.push_back(m.str());
    }
  }
  for (const std::string& name : names) {
    NDX_ASSIGN_OR_RETURN(RedisQueue * q, QueueFor(name));
    NDX_ASSIGN_OR_RETURN(QueueStats s, q->Stats());
    v1::QueueStats* p = out.add_queues();
    p->set_queue(name);
    p->set_waiting(s.waiting);
    p->set_active(s.active);
    p->set_delayed(s.delayed);
    p->set_completed(s.completed);
    p->set_failed(s.failed);
    p->set_cancelled(s.cancelled);
    p->set_timed_out(s.timed_out);
    SetDuration(s.oldest_waiting, p->mutable_oldest_waiting_age());
  }
  return absl::OkStatus();
}

bool QueueServiceImpl::Housekeep(const std::string& owner) {
  std::vector<RedisQueue*> queues;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, q] : queues_) queues.push_back(q.queue.get());
  }
  if (queues.empty()) {
    absl::StatusOr<RedisQueue*> q = QueueFor("");
    if (q.ok()) queues.push_back(*q);
  }
  bool more = false;
  for (RedisQueue* q : queues) {
    absl::StatusOr<HousekeepingResult> r = q->Housekeep(owner);
    if (r.ok() && r->more) more = true;
    if (r.ok() && r->ran && options_.store != nullptr) {
      std::vector<std::string> ended = r->stall_failed_ids;
      ended.insert(ended.end(), r->timed_out_ids.begin(), r->timed_out_ids.end());
      ended.insert(ended.end(), r->cancelled_ids.begin(), r->cancelled_ids.end());
      if (!ended.empty()) service::RecordEnds(*q, *options_.store, ended);
      service::RecordUnrecorded(*q, *options_.store);
    }
    if (r.ok() && options_.metrics != nullptr) {
      options_.metrics->Housekept(q->options().name, r->requeued, r->stall_failed, r->timed_out);
    }
    if (!r.ok()) {
      log::Debug("housekeeping failed", {{"queue", q->options().name}, {"error", r.status()}});
    } else if (r->requeued + r->stall_failed + r->timed_out > 0) {
      log::Info("housekeeping", {{"queue", q->options().name},
                                 {"requeued_stalled", r->requeued},
                                 {"failed_stalled", r->stall_failed},
                                 {"timed_out", r->timed_out}});
    }
  }
  return more;
}

void QueueServiceImpl::ReconcileHistory() {
  if (options_.store == nullptr) return;
  store::ListQuery q;
  q.statuses = {store::ExecutionStatus::kRunning};
  q.page_size = 100;
  for (int page = 0; page < 20; ++page) {
    absl::StatusOr<store::ExecutionPage> rows = options_.store->ListExecutions(q);
    if (!rows.ok()) return;
    for (const store::ExecutionRecord& row : rows->executions) {
      if (row.queue.empty()) continue;
      absl::StatusOr<RedisQueue*> queue = QueueFor(row.queue);
      if (!queue.ok()) continue;
      // The same rule as housekeeping's (service::RecordEndFromQueue); a job still running, or
      // gone from Redis, is left (FAILED_PRECONDITION / nothing to record).
      absl::StatusOr<JobInfo> job = (*queue)->Get(row.id);
      if (!job.ok() || !IsTerminal(job->state)) continue;
      const absl::Status s = service::RecordEndFromQueue(**queue, *options_.store, row.id);
      if (s.ok()) {
        (void)(*queue)->MarkRecorded({row.id});
        log::Info("history reconciled", {{"execution", row.id}});
      }
    }
    if (rows->next_page_token.empty()) return;
    q.page_token = rows->next_page_token;
  }
}

void QueueServiceImpl::RefreshGauges() {
  if (options_.metrics == nullptr) return;
  std::vector<RedisQueue*> queues;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, q] : queues_) queues.push_back(q.queue.get());
  }
  for (RedisQueue* q : queues) {
    absl::StatusOr<QueueStats> s = q->Stats();
    if (s.ok()) options_.metrics->SetStats(q->options().name, *s);
  }
}

void QueueServiceImpl::WaiterLoop() {
  while (true) {
    std::vector<std::unique_ptr<Waiter>> batch;
    {
      absl::MutexLock lock(&waiters_mu_);
      const auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(waiters_mu_) {
        return stopping_ || !waiters_.empty();
      };
      waiters_mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      if (stopping_) {
        for (auto& w : waiters_) {
          w->reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
        }
        waiters_.clear();
        return;
      }
      batch.swap(waiters_);
    }
    std::vector<std::unique_ptr<Waiter>> keep;
    for (auto& w : batch) {
      if (w->context->IsCancelled()) {
        w->reactor->Finish(grpc::Status::CANCELLED);
        continue;
      }
      v1::Execution execution;
      const absl::Status s = Get(w->id, w->workspace, w->view, execution);
      if (!s.ok()) {
        w->reactor->Finish(common::ToGrpcStatus(s));
        continue;
      }
      const bool terminal = execution.state() == v1::EXECUTION_STATE_COMPLETED ||
                            execution.state() == v1::EXECUTION_STATE_FAILED ||
                            execution.state() == v1::EXECUTION_STATE_CANCELLED ||
                            execution.state() == v1::EXECUTION_STATE_TIMED_OUT;
      if (terminal) {
        *w->response = std::move(execution);
        w->reactor->Finish(grpc::Status::OK);
      } else if (absl::Now() >= w->deadline) {
        w->reactor->Finish(grpc::Status(
            grpc::StatusCode::DEADLINE_EXCEEDED,
            absl::StrCat("execution ", w->id, " is still ",
                         v1::ExecutionState_Name(execution.state()), " at the wait deadline")));
      } else {
        keep.push_back(std::move(w));
      }
    }
    {
      absl::MutexLock lock(&waiters_mu_);
      for (auto& w : keep) waiters_.push_back(std::move(w));
    }
    absl::SleepFor(options_.wait_poll);
  }
}

grpc::ServerUnaryReactor* QueueServiceImpl::ExecuteWorkflow(
    grpc::CallbackServerContext* context, const v1::ExecuteWorkflowRequest* request,
    v1::ExecuteWorkflowResponse* response) {
  // Not Execute(): this thread must not wait for a batch another thread is sending (group
  // commit); the reactor is finished by whichever thread gets the job's result.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time deadline = context->deadline() == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(context->deadline());
  ExecuteAsync(*request, *response, deadline,
               [reactor](absl::Status s) { reactor->Finish(common::ToGrpcStatus(s)); });
  return reactor;
}

grpc::ServerUnaryReactor* QueueServiceImpl::GetExecution(grpc::CallbackServerContext* context,
                                                         const v1::GetExecutionRequest* request,
                                                         v1::Execution* response) {
  const v1::ExecutionView view =
      request->view() == v1::EXECUTION_VIEW_UNSPECIFIED ? v1::EXECUTION_VIEW_FULL : request->view();
  return Done(context, Get(request->execution_id(), request->workspace_id(), view, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::ListExecutions(grpc::CallbackServerContext* context,
                                                           const v1::ListExecutionsRequest* request,
                                                           v1::ListExecutionsResponse* response) {
  return Done(context, List(*request, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::CancelExecution(
    grpc::CallbackServerContext* context, const v1::CancelExecutionRequest* request,
    v1::Execution* response) {
  return Done(context, Cancel(*request, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::DeleteExecution(
    grpc::CallbackServerContext* context, const v1::DeleteExecutionRequest* request,
    v1::DeleteExecutionResponse* response) {
  absl::Status s = Delete(*request);
  if (s.ok()) response->set_execution_id(request->execution_id());
  return Done(context, s);
}

grpc::ServerUnaryReactor* QueueServiceImpl::ListWorkers(grpc::CallbackServerContext* context,
                                                        const v1::ListWorkersRequest* request,
                                                        v1::ListWorkersResponse* response) {
  return Done(context, Workers(*request, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::RetryExecution(grpc::CallbackServerContext* context,
                                                           const v1::RetryExecutionRequest* request,
                                                           v1::Execution* response) {
  return Done(context, Retry(*request, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::GetQueueStats(grpc::CallbackServerContext* context,
                                                          const v1::GetQueueStatsRequest* request,
                                                          v1::GetQueueStatsResponse* response) {
  return Done(context, Stats(*request, *response));
}

grpc::ServerUnaryReactor* QueueServiceImpl::WaitExecution(grpc::CallbackServerContext* context,
                                                          const v1::WaitExecutionRequest* request,
                                                          v1::Execution* response) {
  if (request->execution_id().empty()) {
    return Done(context, absl::InvalidArgumentError("execution_id is required"));
  }
  absl::Time deadline = absl::Now() + options_.max_wait;
  if (request->has_timeout())
    deadline = std::min(deadline, absl::Now() + ToDuration(request->timeout()));
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(context->deadline()));
  }
  auto waiter = std::make_unique<Waiter>();
  waiter->context = context;
  waiter->reactor = context->DefaultReactor();
  waiter->response = response;
  waiter->id = request->execution_id();
  waiter->workspace = request->workspace_id();
  waiter->view =
      request->view() == v1::EXECUTION_VIEW_UNSPECIFIED ? v1::EXECUTION_VIEW_FULL : request->view();
  waiter->deadline = deadline;
  grpc::ServerUnaryReactor* reactor = waiter->reactor;
  absl::MutexLock lock(&waiters_mu_);
  if (stopping_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
  } else {
    waiters_.push_back(std::move(waiter));
  }
  return reactor;
}

}  // namespace ndx::queue
