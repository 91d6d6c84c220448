// File: worker_metrics.h
//
// WorkerMetrics: the Prometheus families of a worker's run loop (STYLE.md rule 19), built once on
// an injected registry. Names are ndx_*, in base units; deploy/ (alerts, autoscaling) relies on
// them, so rename with care.
//
// Thread-safe (prometheus-cpp metrics are).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ndx::worker {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(prometheus::Registry& registry);

  void Claimed(int jobs, absl::Duration queue_wait_of_each_sum);  // claims_total, queue wait
  void QueueWait(absl::Duration wait);
  // outcome: completed | failed | retrying | timed_out | cancelled | suspended | released |
  // lease_lost
  void Finished(const std::string& outcome, absl::Duration duration);
  void NodeRun(const std::string& node_type, const std::string& outcome, absl::Duration duration);
  void LeaseLost() { leases_lost_.Increment(); }
  void SetSlots(int busy, int total);

 private:
  prometheus::Family<prometheus::Counter>& executions_;
  prometheus::Family<prometheus::Histogram>& execution_duration_;
  prometheus::Family<prometheus::Histogram>& node_duration_;
  prometheus::Counter& claims_;
  prometheus::Counter& claimed_jobs_;
  prometheus::Histogram& queue_wait_;
  prometheus::Counter& retries_;
  prometheus::Counter& leases_lost_;
  prometheus::Counter& cancels_;
  prometheus::Gauge& slots_busy_;
  prometheus::Gauge& slots_total_;
  prometheus::Gauge& running_;
};

}  // namespace ndx::worker
