#include "libs/queue/enqueue_batcher.h"

#include <iterator>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace ndx::queue {

EnqueueBatcher::EnqueueBatcher(RedisQueue& queue, size_t max_batch)
    : queue_(queue), max_batch_(max_batch < 1 ? 1 : max_batch) {}

void EnqueueBatcher::Submit(NewJob job, absl::Time deadline, Done done) {
  std::vector<Pending> batch;
  {
    absl::MutexLock lock(&mu_);
    pending_.push_back(Pending{std::move(job), deadline, std::move(done)});
    if (sending_) return;  // the sending thread takes it with the next batch
    sending_ = true;
  }
  std::vector<NewJob> jobs;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (pending_.empty()) {
        sending_ = false;
        return;
      }
      const size_t take = std::min(pending_.size(), max_batch_);
      batch.assign(std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.begin() + static_cast<ptrdiff_t>(take)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(take));
    }
    // A caller that has given up is not enqueued behind its back: its client saw an error.
    const absl::Time now = absl::Now();
    std::vector<Pending*> live;
    live.reserve(batch.size());
    jobs.clear();
    for (Pending& p : batch) {
      if (now >= p.deadline) {
        p.done(absl::DeadlineExceededError(
            "the request's deadline passed before its job could be enqueued"));
        continue;
      }
      live.push_back(&p);
      jobs.push_back(std::move(p.job));
    }
    if (!jobs.empty()) {
      absl::StatusOr<std::vector<absl::StatusOr<EnqueueResult>>> results = queue_.EnqueueEach(jobs);
      {
        absl::MutexLock lock(&mu_);
        batches_++;
        jobs_ += static_cast<int64_t>(jobs.size());
      }
      for (size_t i = 0; i < live.size(); ++i) {
        live[i]->done(results.ok() ? std::move((*results)[i])
                                   : absl::StatusOr<EnqueueResult>(results.status()));
      }
    }
    batch.clear();
  }
}

absl::StatusOr<EnqueueResult> EnqueueBatcher::Enqueue(NewJob job, absl::Time deadline) {
  absl::StatusOr<EnqueueResult> out = absl::UnknownError("not done");
  absl::Notification done;
  Submit(std::move(job), deadline, [&out, &done](absl::StatusOr<EnqueueResult> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

int64_t EnqueueBatcher::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

int64_t EnqueueBatcher::jobs() const {
  absl::MutexLock lock(&mu_);
  return jobs_;
}

size_t EnqueueBatcher::pending() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

bool EnqueueBatcher::sending() const {
  absl::MutexLock lock(&mu_);
  return sending_;
}

}  // namespace ndx::queue
