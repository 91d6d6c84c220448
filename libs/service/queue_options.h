// File: queue_options.h
//
// The queue policies of a process, from its configuration (NDX_QUEUE, NDX_LEASE, ... and the
// seed's EXECUTION_*_TTL variables): every process of a deployment must use the same ones.
#pragma once

#include "absl/time/time.h"
#include "libs/config/service_config.h"
#include "libs/queue/redis_queue.h"

namespace ndx::service {

inline queue::QueueOptions MakeQueueOptions(const config::CommonConfig& c,
                                            absl::Duration housekeeping_interval) {
  queue::QueueOptions o;
  o.name = c.queue;
  o.lease = c.lease;
  o.state_ttl = c.state_ttl;
  o.completion_ttl = c.completion_ttl;
  o.max_depth = c.max_queue_depth;
  o.keep_finished = c.keep_finished;
  o.max_stalls = c.max_stalls;
  o.housekeeping_interval = housekeeping_interval;
  o.max_payload_bytes = static_cast<size_t>(c.max_job_bytes);
  o.default_timeout = c.job_timeout;
  o.default_max_attempts = c.max_attempts;
  o.default_backoff = c.retry_backoff;
  o.jitter = c.retry_jitter;
  return o;
}

}  // namespace ndx::service
