// File: event_hub.h
//
// EventHub: the one reader of a queue's event feed (<p>feed, see event_log.h) in a process. It
// follows the feed with XREAD BLOCK (1 s at a time, so a dropped connection or a restarted Redis
// costs at most a second) and hands every entry to the local subscribers whose filter matches: one
// Redis connection per process, however many subscribers.
//
//   EventHub hub(redis_options, "default");
//   hub.Start();
//   uint64_t id = hub.Subscribe({.execution_id = "..."}, [](const FeedEvent& e) { ... });
//   hub.Unsubscribe(id);
//
// Sinks run on the hub's thread, one event at a time, with the hub's lock held: they must not
// block, must not call Subscribe/Unsubscribe, and must not take a lock that is held while calling
// Subscribe/Unsubscribe. Delivery through the
// hub is best effort (a feed trimmed while the hub was disconnected skips entries); subscribers
// that need every event of an execution fill gaps from the execution's log by seq (EventStream
// does).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/redis/redis_client.h"

namespace ndx::events {

struct FeedEvent {
  std::string cursor;  // the feed entry id ("1767225600123-0"): resume point of feeds
  std::string execution_id;
  int64_t seq = 0;
  std::string workflow_id;
  std::string workspace;
  std::string json;
};

class EventHub {
 public:
  // Exactly one of execution_id / workflow_id, or neither for everything; `workspace` (when not
  // empty) further restricts to that workspace's executions.
  struct Filter {
    std::string execution_id;
    std::string workflow_id;
    std::string workspace;
  };
  using Sink = std::function<void(const FeedEvent&)>;

  EventHub(redis::RedisOptions redis, std::string queue);
  ~EventHub();

  // Starts following the feed from its current end. Idempotent.
  void Start();
  void Stop();

  uint64_t Subscribe(Filter filter, Sink sink);
  void Unsubscribe(uint64_t id);
  size_t subscribers() const;

  // Entries appended so far (for tests and metrics).
  uint64_t delivered() const { return delivered_.load(); }
  // The feed id the hub has read up to ("" before the first read).
  std::string position() const;

 private:
  struct Subscriber {
    Filter filter;
    Sink sink;
  };

  void Run();
  void Dispatch(const FeedEvent& event);

  const redis::RedisOptions redis_options_;
  const std::string feed_key_;
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  std::string position_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
};

}  // namespace ndx::events
