#include "services/queue/queue_metrics.h"

#include "libs/queue/redis_queue.h"

namespace ndx::queue {

QueueMetrics::QueueMetrics(prometheus::Registry& r)
    : enqueued_(prometheus::BuildCounter()
                    .Name("ndx_executions_enqueued_total")
                    .Help("ExecuteWorkflow calls that enqueued (or found, for a repeated "
                          "request_id) an execution, by queue")
                    .Register(r)),
      stalls_recovered_(prometheus::BuildCounter()
                            .Name("ndx_stalls_recovered_total")
                            .Help("Executions whose lease lapsed and that went back to the queue")
                            .Register(r)),
      stalls_failed_(prometheus::BuildCounter()
                         .Name("ndx_stalls_failed_total")
                         .Help("Executions failed for stalling more than NDX_MAX_STALLS times")
                         .Register(r)),
      timed_out_(prometheus::BuildCounter()
                     .Name("ndx_deadlines_expired_total")
                     .Help("Executions ended by housekeeping because their deadline passed")
                     .Register(r)),
      depth_(prometheus::BuildGauge()
                 .Name("ndx_queue_depth")
                 .Help("Executions in the queue by state (waiting, delayed, active; completed, "
                       "failed, cancelled and timed_out are the retained indexes)")
                 .Register(r)),
      oldest_(prometheus::BuildGauge()
                  .Name("ndx_queue_oldest_waiting_age_seconds")
                  .Help("Age of the oldest ready execution")
                  .Register(r)),
      subscribers_(prometheus::BuildGauge()
                       .Name("ndx_event_subscribers")
                       .Help("Open EventStream subscriptions on this process")
                       .Register(r)
                       .Add({})) {}

void QueueMetrics::Enqueued(const std::string& queue, bool duplicate) {
  enqueued_.Add({{"queue", queue}, {"duplicate", duplicate ? "true" : "false"}}).Increment();
}

void QueueMetrics::Housekept(const std::string& queue, int64_t requeued, int64_t stall_failed,
                             int64_t timed_out) {
  if (requeued > 0) stalls_recovered_.Add({{"queue", queue}}).Increment(requeued);
  if (stall_failed > 0) stalls_failed_.Add({{"queue", queue}}).Increment(stall_failed);
  if (timed_out > 0) timed_out_.Add({{"queue", queue}}).Increment(timed_out);
}

void QueueMetrics::SetStats(const std::string& queue, const QueueStats& s) {
  const std::pair<const char*, int64_t> states[] = {
      {"waiting", s.waiting},     {"delayed", s.delayed}, {"active", s.active},
      {"completed", s.completed}, {"failed", s.failed},   {"cancelled", s.cancelled},
      {"timed_out", s.timed_out}};
  for (const auto& [state, n] : states) {
    depth_.Add({{"queue", queue}, {"state", state}}).Set(static_cast<double>(n));
  }
  oldest_.Add({{"queue", queue}}).Set(absl::ToDoubleSeconds(s.oldest_waiting));
}

}  // namespace ndx::queue
