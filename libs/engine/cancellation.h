// File: cancellation.h
//
// CancellationToken: how a running execution is told to stop (a cancel request, a lost lease, a
// deadline, a shutdown). The engine checks it between nodes; long operations check it while they
// run: the HTTP client aborts its transfer, the JavaScript sandbox interrupts the script, a wait
// returns early. Cancel() may be called from any thread, any number of times; the first reason
// wins.
//
//   CancellationToken token;
//   std::thread t([&] { while (!token.cancelled()) { ...; token.WaitFor(absl::Milliseconds(50)); }
//   }); token.Cancel(absl::CancelledError("execution cancelled by user"));
//
// Thread-safe.
#pragma once

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ndx::engine {

class CancellationToken {
 public:
  CancellationToken() = default;
  CancellationToken(const CancellationToken&) = delete;
  CancellationToken& operator=(const CancellationToken&) = delete;

  // Requests cancellation with `reason` (kept only for the first call). Wakes every WaitFor().
  void Cancel(absl::Status reason) {
    absl::MutexLock lock(&mu_);
    if (cancelled_.load(std::memory_order_relaxed)) return;
    reason_ = std::move(reason);
    cancelled_.store(true, std::memory_order_release);
  }

  // Cheap; safe to call in tight loops (one atomic load).
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // OK while not cancelled; else the reason given to Cancel().
  absl::Status reason() const {
    absl::MutexLock lock(&mu_);
    return cancelled_.load(std::memory_order_relaxed) ? reason_ : absl::OkStatus();
  }

  // Sleeps for `d` or until cancelled, whichever comes first. Returns true if cancelled.
  bool WaitFor(absl::Duration d) const {
    absl::MutexLock lock(&mu_);
    const auto is_cancelled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return cancelled_.load(std::memory_order_relaxed);
    };
    return mu_.AwaitWithTimeout(absl::Condition(&is_cancelled), d);
  }

  // Sleeps until `t` or until cancelled. Returns true if cancelled.
  bool WaitUntil(absl::Time t) const { return WaitFor(t - absl::Now()); }

 private:
  mutable absl::Mutex mu_;
  std::atomic<bool> cancelled_{false};
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndx::engine
