// File: redis_coalescer.h
//
// RedisCoalescer: script calls of many threads over one Redis connection, pipelined. A call made
// while the connection is idle goes out at once (one round trip, as RedisConnection::Eval); calls
// made while it is busy queue up, and the next of them to run sends the whole queue in one write
// and reads all the replies (one round trip for all), which is what an asynchronous client such
// as ioredis does implicitly. Redis then reads and answers many calls per system call instead of
// one: with many threads that each wait for their own call (the worker's slots), this divides
// Redis' socket cost per call.
//
//   RedisCoalescer scripts(options);
//   NDX_ASSIGN_OR_RETURN(RedisReply r, scripts.Eval(kScript, {key}, {arg}));
//
// Calls of different threads are independent: each is its own EVALSHA, run by Redis in the order
// it was queued; calls of one thread run in the order it made them (a call returns only after its
// reply). When the connection fails, every call of the failed round trip fails with its status
// (UNAVAILABLE, DEADLINE_EXCEEDED, ... as RedisConnection): whether it ran is unknown.
//
// Thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"

namespace ndx::redis {

class RedisCoalescer {
 public:
  // `clock` (the connection's reconnect backoff) must outlive the coalescer.
  explicit RedisCoalescer(RedisOptions options, common::Clock& clock = common::RealClock());
  RedisCoalescer(const RedisCoalescer&) = delete;
  RedisCoalescer& operator=(const RedisCoalescer&) = delete;

  // As RedisConnection::Eval (loads the script when needed, reloads it after NOSCRIPT), but
  // pipelined with other threads' calls. Blocks until its reply is read.
  absl::StatusOr<RedisReply> Eval(const RedisScript& script,
                                  const std::vector<std::string_view>& keys,
                                  const std::vector<std::string_view>& args);

  // Round trips so far, and calls they carried (for tests and metrics).
  int64_t round_trips() const;
  int64_t calls() const;

 private:
  struct Call {
    const RedisScript* script;
    const std::vector<std::string_view>* keys;
    const std::vector<std::string_view>* args;
    absl::StatusOr<RedisReply> result;
    bool done = false;
  };
  // Sends `batch` on connection_ and fills in each call's result. Called by one thread at a time.
  void Send(const std::vector<Call*>& batch);

  mutable absl::Mutex mu_;
  std::vector<Call*> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a thread is sending a batch
  int64_t round_trips_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  // Used by the thread that sends (busy_), outside mu_.
  RedisConnection connection_;
};

}  // namespace ndx::redis
