#include "services/worker/worker_metrics.h"

namespace ndx::worker {
namespace {

const prometheus::Histogram::BucketBoundaries& SecondsBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return *b;
}

}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& r)
    : executions_(prometheus::BuildCounter()
                      .Name("ndx_executions_total")
                      .Help("Execution attempts that ended on this worker, by outcome")
                      .Register(r)),
      execution_duration_(prometheus::BuildHistogram()
                              .Name("ndx_execution_duration_seconds")
                              .Help("Time from claim to the end of an attempt, by outcome")
                              .Register(r)),
      node_duration_(prometheus::BuildHistogram()
                         .Name("ndx_node_duration_seconds")
                         .Help("Node run durations, by node type and outcome")
                         .Register(r)),
      claims_(prometheus::BuildCounter()
                  .Name("ndx_worker_claims_total")
                  .Help("Claim calls that returned at least one execution")
                  .Register(r)
                  .Add({})),
      claimed_jobs_(prometheus::BuildCounter()
                        .Name("ndx_worker_claimed_executions_total")
                        .Help("Executions claimed")
                        .Register(r)
                        .Add({})),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("ndx_queue_wait_seconds")
                      .Help("Time an execution was ready before a worker claimed it")
                      .Register(r)
                      .Add({}, SecondsBuckets())),
      retries_(prometheus::BuildCounter()
                   .Name("ndx_retries_total")
                   .Help("Attempts that failed transiently and were scheduled again")
                   .Register(r)
                   .Add({})),
      leases_lost_(prometheus::BuildCounter()
                       .Name("ndx_leases_lost_total")
                       .Help("Runs stopped because another worker took over their lease")
                       .Register(r)
                       .Add({})),
      cancels_(prometheus::BuildCounter()
                   .Name("ndx_cancels_total")
                   .Help("Running executions stopped by a cancel request")
                   .Register(r)
                   .Add({})),
      slots_busy_(prometheus::BuildGauge()
                      .Name("ndx_worker_slots_busy")
                      .Help("Execution slots in use")
                      .Register(r)
                      .Add({})),
      slots_total_(prometheus::BuildGauge()
                       .Name("ndx_worker_slots_total")
                       .Help("Execution slots (EXECUTION_WORKER_CONCURRENCY)")
                       .Register(r)
                       .Add({})),
      running_(prometheus::BuildGauge()
                   .Name("ndx_running_executions")
                   .Help("Executions running on this worker")
                   .Register(r)
                   .Add({})) {}

void WorkerMetrics::Claimed(int jobs, absl::Duration) {
  claims_.Increment();
  claimed_jobs_.Increment(jobs);
}

void WorkerMetrics::QueueWait(absl::Duration wait) {
  queue_wait_.Observe(absl::ToDoubleSeconds(wait));
}

void WorkerMetrics::Finished(const std::string& outcome, absl::Duration duration) {
  executions_.Add({{"outcome", outcome}}).Increment();
  execution_duration_.Add({{"outcome", outcome}}, SecondsBuckets())
      .Observe(absl::ToDoubleSeconds(duration));
  if (outcome == "retrying") retries_.Increment();
  if (outcome == "cancelled") cancels_.Increment();
}

void WorkerMetrics::NodeRun(const std::string& node_type, const std::string& outcome,
                            absl::Duration duration) {
  node_duration_.Add({{"node_type", node_type}, {"outcome", outcome}}, SecondsBuckets())
      .Observe(absl::ToDoubleSeconds(duration));
}

void WorkerMetrics::SetSlots(int busy, int total) {
  slots_busy_.Set(busy);
  slots_total_.Set(total);
  running_.Set(busy);
}

}  // namespace ndx::worker
