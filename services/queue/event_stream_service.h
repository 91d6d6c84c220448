// File: event_stream_service.h
//
// EventStreamService: EventStream.Subscribe (proto/ndx/v1/event_stream.proto) over the event logs
// and feeds of libs/events.
//
// An execution subscription replays the execution's log from `after_seq`, then follows it live,
// with no gap and no duplicate across the boundary: live events come from the process's EventHub
// and are matched by seq (one behind the next expected seq is dropped, one ahead makes the missing
// range be read from the log first), and a subscription that hears nothing for a second reads the
// log again, so a lost feed entry costs at most that second. The stream ends with OK after the
// execution's terminal event (completed, failed, cancelled).
//
// A workflow or "all" subscription follows the feed live (workspace-filtered), each event carrying
// its feed `cursor`.
//
// Every subscription has a bounded buffer (Options::max_buffered events). An execution subscription
// whose client reads slower than events arrive stops buffering live events and catches up from the
// log instead, so it is never cut off while it keeps reading; a client that stops reading (a write
// pending longer than Options::stall_timeout while events wait) gets RESOURCE_EXHAUSTED and resumes
// with its last seq. A workflow or "all" subscription (no log to catch up from) gets
// RESOURCE_EXHAUSTED as soon as its buffer overflows. Memory per subscription is bounded either
// way.
//
// One dispatcher thread routes feed events (parsed once per event, shared by every subscriber),
// does all the Redis reads and starts all the writes, so neither gRPC threads nor the feed reader
// ever block on a subscriber.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/redis/redis_client.h"
#include "libs/events/event_hub.h"
#include "libs/events/event_log.h"
#include "ndx/v1/event_stream.grpc.pb.h"

namespace ndx::queue {

class EventStreamService final : public v1::EventStream::CallbackService {
 public:
  struct Options {
    std::string default_queue = "default";
    size_t max_buffered = 1000;  // events waiting for a slow client before RESOURCE_EXHAUSTED
    absl::Duration idle_poll = absl::Seconds(1);
    absl::Duration stall_timeout = absl::Seconds(10);
    int64_t replay_chunk = 256;
  };
  // Finds the queue of an execution visible to `workspace` ("" = any): NOT_FOUND when unknown,
  // expired or another workspace's.
  using Locator = std::function<absl::StatusOr<std::string>(const std::string& execution_id,
                                                            const std::string& workspace)>;

  EventStreamService(redis::RedisPool& pool, redis::RedisOptions redis, Options options,
                     Locator locator);
  ~EventStreamService() override;

  grpc::ServerWriteReactor<v1::ExecutionEvent>* Subscribe(
      grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) override;

  // Local subscriptions now (for metrics and tests).
  size_t subscriptions() const;

 private:
  class Reactor;
  struct Sub;
  struct Queue {
    std::unique_ptr<events::EventLog> log;
    std::unique_ptr<events::EventHub> hub;
  };

  Queue& QueueNamed(const std::string& name);
  void Run();
  void StartSub(Sub& sub);
  void Fill(Sub& sub, int64_t upto);
  void Route(const std::string& queue, const events::FeedEvent& e);
  void OnFeed(Sub& sub, const events::FeedEvent& e,
              const std::shared_ptr<const v1::ExecutionEvent>& proto);
  void Pump(Sub& sub);
  void FinishSub(Sub& sub, absl::Status status);
  // Called from gRPC threads and the hub; they only queue work for the dispatcher.
  void Post(std::function<void()> work);

  redis::RedisPool& pool_;
  const redis::RedisOptions redis_;
  const Options options_;
  const Locator locator_;

  absl::Mutex queues_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Queue>> queues_ ABSL_GUARDED_BY(queues_mu_);

  // Dispatcher-owned (touched only on the dispatcher thread).
  absl::flat_hash_map<uint64_t, std::shared_ptr<Sub>> subs_;
  absl::flat_hash_map<std::string, std::vector<uint64_t>> by_execution_;  // "queue/id" -> subs
  std::vector<uint64_t> feeds_;  // workflow and all subscriptions

  mutable absl::Mutex mu_;
  std::vector<std::function<void()>> inbox_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  size_t live_subs_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
};

}  // namespace ndx::queue
