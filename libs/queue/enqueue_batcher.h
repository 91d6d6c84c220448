// File: enqueue_batcher.h
//
// EnqueueBatcher: group commit of single enqueues. Each ExecuteWorkflow call has one job; alone,
// each would pay a whole EVALSHA round trip (Redis spends 60-120 µs on a batch of one against
// about 18 µs per job in a batch of 100). Calls that arrive while a batch is in flight wait in a
// pending list; when the batch returns, everything pending goes out as the next batch, one
// RedisQueue::EnqueueEach call. There is no timer: a job submitted while nothing is in flight is
// sent at once by the submitting thread, so a lone caller waits for exactly its own round trip.
//
//   EnqueueBatcher batcher(queue);
//   batcher.Submit(std::move(job), deadline, [](absl::StatusOr<EnqueueResult> r) { ... });
//
// Per-request semantics are those of a lone Enqueue: each job gets its own result (its id, or the
// first request's id and duplicate=true for a repeated idempotency key, also when the first is in
// the same batch), its own error (CheckJob's, or RESOURCE_EXHAUSTED when the queue is full), and a
// failed round trip (Redis down: UNAVAILABLE) fails every job of that batch and nothing else. A
// job whose deadline passes while it waits is not sent (DEADLINE_EXCEEDED).
//
// The thread that finds nothing in flight becomes the sender: it sends its batch, calls the
// callbacks of that batch, and goes on sending what accumulated meanwhile until nothing is
// pending. Callbacks run on that thread, without the batcher's lock held; they must not block on
// another Submit. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/queue/redis_queue.h"

namespace ndx::queue {

class EnqueueBatcher {
 public:
  using Done = std::function<void(absl::StatusOr<EnqueueResult>)>;

  // `queue` must outlive the batcher. `max_batch`: jobs per EnqueueEach call at most (a bound on
  // the script's run time, which blocks Redis for everyone).
  explicit EnqueueBatcher(RedisQueue& queue, size_t max_batch = 256);
  EnqueueBatcher(const EnqueueBatcher&) = delete;
  EnqueueBatcher& operator=(const EnqueueBatcher&) = delete;

  // Enqueues `job` (see the file comment); `done` is called exactly once, possibly before Submit
  // returns.
  void Submit(NewJob job, absl::Time deadline, Done done);

  // Submit, then wait for the result.
  absl::StatusOr<EnqueueResult> Enqueue(NewJob job, absl::Time deadline = absl::InfiniteFuture());

  // EnqueueEach calls so far, and the jobs they carried (tests, metrics).
  int64_t batches() const;
  int64_t jobs() const;
  // Jobs waiting for the next batch, and whether a thread is sending one (tests).
  size_t pending() const;
  bool sending() const;

 private:
  struct Pending {
    NewJob job;
    absl::Time deadline;
    Done done;
  };

  RedisQueue& queue_;
  const size_t max_batch_;

  mutable absl::Mutex mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;  // a thread is sending batches
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t jobs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ndx::queue
