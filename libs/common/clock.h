// File: clock.h
//
// Time is injected (STYLE.md rule 15): code that reads the time for leases, retries, backoff or
// timestamps takes a `Clock&`. Production passes RealClock(); tests pass a FakeClock and advance it
// instead of sleeping.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ndx::common {

// Clock: the source of wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // The current wall-clock time.
  virtual absl::Time Now() const = 0;
};

// The system clock. Stateless; shared by the whole process.
Clock& RealClock();

// FakeClock: a clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  // Starts at `start` (default: 2026-01-01T00:00:00Z, so timestamps in tests are stable).
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndx::common
