// File: event_log.h
//
// EventLog: the ordered, replayable progress events of executions (DESIGN.md "Events"), kept in
// Redis next to the queue's keys (libs/queue/lua/common.lua, "Events"):
//
//   <p>ev:<id>  LIST   the execution's events, oldest first; an event's seq is its position
//                      (1, 2, 3...), so seq has no gap and is assigned atomically with the state
//                      change that appends it (the queue's and the worker's scripts append).
//   <p>feed     STREAM every appended event (execution id, seq, workflow id, workspace, JSON),
//                      capped at about 100,000 entries; followed by EventHub for live delivery.
//
// Events are stored as JSON without their seq (NodeDrop's shape: type, executionId, workflowId,
// timestamp, nodeId, nodeName, nodeType, data, error); readers attach the seq.
//
// Thread-safe (connections come from a RedisPool).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/redis/redis_client.h"

namespace ndx::events {

struct StoredEvent {
  int64_t seq = 0;
  std::string json;  // without "seq"
};

class EventLog {
 public:
  // `pool` must outlive the log. `queue` is the queue name (its keys are "ndx:{queue}:...").
  EventLog(redis::RedisPool& pool, std::string queue);

  // Appends an event; returns its seq. The log expires `ttl` after its first event (the queue
  // shortens it to the completion TTL when the execution ends).
  absl::StatusOr<int64_t> Append(const std::string& execution_id, const std::string& workflow_id,
                                 const std::string& workspace, const std::string& event_json,
                                 absl::Duration ttl);

  // Events with seq > after_seq, oldest first, at most `limit`.
  absl::StatusOr<std::vector<StoredEvent>> Read(const std::string& execution_id, int64_t after_seq,
                                                int64_t limit);

  // The number of events (= the last seq; 0 when none or expired).
  absl::StatusOr<int64_t> Length(const std::string& execution_id);

  // Whether the execution is known: its job record or its event log still exists.
  absl::StatusOr<bool> Exists(const std::string& execution_id);

  const std::string& prefix() const { return prefix_; }
  std::string feed_key() const { return prefix_ + "feed"; }

 private:
  redis::RedisPool& pool_;
  const std::string prefix_;
};

}  // namespace ndx::events
