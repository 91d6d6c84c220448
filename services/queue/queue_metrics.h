// File: queue_metrics.h
//
// QueueMetrics: the Prometheus families of ndx-queue (STYLE.md rule 19). The autoscaling and alert
// rules in deploy/ rely on ndx_queue_depth{queue,state} and
// ndx_queue_oldest_waiting_age_seconds{queue}: rename with care.
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ndx::queue {

struct QueueStats;

class QueueMetrics {
 public:
  explicit QueueMetrics(prometheus::Registry& registry);

  void Enqueued(const std::string& queue, bool duplicate);
  void Housekept(const std::string& queue, int64_t requeued, int64_t stall_failed,
                 int64_t timed_out);
  void SetStats(const std::string& queue, const QueueStats& stats);
  void SetSubscribers(size_t n) { subscribers_.Set(static_cast<double>(n)); }

 private:
  prometheus::Family<prometheus::Counter>& enqueued_;
  prometheus::Family<prometheus::Counter>& stalls_recovered_;
  prometheus::Family<prometheus::Counter>& stalls_failed_;
  prometheus::Family<prometheus::Counter>& timed_out_;
  prometheus::Family<prometheus::Gauge>& depth_;
  prometheus::Family<prometheus::Gauge>& oldest_;
  prometheus::Gauge& subscribers_;
};

}  // namespace ndx::queue
