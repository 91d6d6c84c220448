#include "libs/engine/js/js_watchdog.h"

#include <algorithm>
#include <utility>

namespace ndx::engine::js_internal {

JsWatchdog::JsWatchdog(std::function<void()> interrupt)
    : interrupt_(std::move(interrupt)), thread_([this] { Loop(); }) {}

JsWatchdog::~JsWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

JsWatchdog::SteadyTime JsWatchdog::Deadline(absl::Duration timeout) {
  // Anything beyond a year is "no deadline" (and would overflow steady_clock arithmetic).
  if (timeout <= absl::ZeroDuration() || timeout > absl::Hours(24 * 365)) {
    return SteadyTime::max();
  }
  return std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
}

void JsWatchdog::Arm(SteadyTime deadline, const CancellationToken* cancel) {
  reason_.store(StopReason::kNone, std::memory_order_release);
  absl::MutexLock lock(&mu_);
  armed_ = true;
  deadline_ = deadline;
  cancel_ = cancel;
}

bool JsWatchdog::Disarm() {
  absl::MutexLock lock(&mu_);
  armed_ = false;
  cancel_ = nullptr;
  deadline_ = SteadyTime::max();
  return reason_.load(std::memory_order_acquire) != StopReason::kNone;
}

void JsWatchdog::Trip(StopReason reason) {
  absl::MutexLock lock(&mu_);
  if (armed_) TripLocked(reason);
}

void JsWatchdog::TripLocked(StopReason reason) {
  StopReason expected = StopReason::kNone;
  if (reason_.compare_exchange_strong(expected, reason, std::memory_order_acq_rel)) {
    // Called under mu_, so a run cannot be disarmed (and the next one armed) between deciding to
    // stop this run and requesting the interrupt for it.
    interrupt_();
  }
}

void JsWatchdog::Loop() {
  absl::MutexLock lock(&mu_);
  auto last_armed = std::chrono::steady_clock::now();
  const auto park_after = absl::ToChronoNanoseconds(kParkAfter);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (armed_) {
      last_armed = now;
      if (reason_.load(std::memory_order_acquire) == StopReason::kNone) {
        if (cancel_ != nullptr && cancel_->cancelled()) {
          TripLocked(StopReason::kCancelled);
        } else if (now >= deadline_) {
          TripLocked(StopReason::kTimeout);
        }
      }
      // Wake at the next poll, or at the deadline if that comes first. Arm/Disarm do not wake us;
      // only the destructor does.
      absl::Duration wait = kPollInterval;
      if (deadline_ > now) {
        wait = std::min(wait, absl::FromChrono(deadline_ - now));
      }
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
    } else if (now - last_armed >= park_after) {
      // Idle: sleep until the next Arm() (or the destructor).
      mu_.Await(absl::Condition(this, &JsWatchdog::ArmedOrStopping));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kPollInterval);
    }
  }
}

}  // namespace ndx::engine::js_internal
