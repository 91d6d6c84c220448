#include "services/worker/worker_service.h"

#include <unistd.h>

#include "absl/time/clock.h"
#include "libs/common/metrics.h"

namespace ndx::worker {
namespace {

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return;
  const int64_t ms = absl::ToUnixMillis(t);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

}  // namespace

WorkerServiceImpl::WorkerServiceImpl(WorkerRunner& runner, std::string queue)
    : runner_(runner), queue_(std::move(queue)), started_at_(absl::Now()) {}

void WorkerServiceImpl::FillStatus(v1::WorkerStatus& out) const {
  const WorkerSnapshot s = runner_.Snapshot();
  out.set_worker_id(runner_.options().worker_id);
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  out.set_hostname(host);
  out.set_version(common::NdxVersion());
  SetTime(started_at_, out.mutable_started_at());
  out.add_queues(queue_);
  out.set_slots_total(s.slots_total);
  out.set_slots_busy(static_cast<int32_t>(s.running.size()));
  for (const WorkerSnapshot::Running& r : s.running) {
    v1::RunningExecution* e = out.add_running_executions();
    e->set_execution_id(r.execution_id);
    e->set_workflow_id(r.workflow_id);
    e->set_queue(queue_);
    e->set_state(v1::EXECUTION_STATE_ACTIVE);
    e->set_current_node_id(r.current_node_id);
    e->set_current_node_name(r.current_node_name);
    SetTime(r.started_at, e->mutable_started_at());
    SetTime(r.deadline, e->mutable_deadline());
    e->set_attempt(r.attempt);
    e->set_lease_epoch(r.epoch);
    e->set_workspace_id(r.workspace_id);
  }
  out.set_processed_count(s.processed);
  out.set_failed_count(s.failed);
  out.set_retried_count(s.retried);
  SetTime(s.last_claim_at, out.mutable_last_claim_at());
  v1::LeaseHealth* lh = out.mutable_lease_health();
  SetDuration(runner_.options().queue.lease, lh->mutable_lease_duration());
  SetDuration(runner_.options().watch_interval, lh->mutable_renew_interval());
  SetTime(s.last_renewal_at, lh->mutable_last_renewal_at());
  lh->set_failed_renewals(s.failed_renewals);
  lh->set_consecutive_failed_renewals(s.consecutive_failed_renewals);
  lh->set_leases_lost(s.leases_lost);
  out.set_draining(s.draining);
  out.set_state(s.drained                         ? v1::WORKER_STATE_DRAINED
                : s.draining && s.running.empty() ? v1::WORKER_STATE_DRAINED
                : s.draining                      ? v1::WORKER_STATE_DRAINING
                                                  : v1::WORKER_STATE_RUNNING);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::GetStatus(grpc::CallbackServerContext* context,
                                                       const v1::GetStatusRequest* request,
                                                       v1::WorkerStatus* response) {
  FillStatus(*response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Drain(grpc::CallbackServerContext* context,
                                                   const v1::DrainRequest* request,
                                                   v1::DrainResponse* response) {
  runner_.Drain();
  if (request->wait()) {
    // Waits for running executions, at most `grace` (and the call's deadline).
    absl::Duration grace =
        absl::Seconds(request->grace().seconds()) + absl::Nanoseconds(request->grace().nanos());
    const absl::Time until = absl::Now() + grace;
    while (absl::Now() < until && !runner_.Snapshot().running.empty() && !context->IsCancelled()) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  FillStatus(*response->mutable_status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace ndx::worker
