// File: js_watchdog.h
//
// JsWatchdog: the thread that stops a script from outside (internal to ndx::engine_js; nothing here
// knows SpiderMonkey). While a run is armed the watchdog wakes every few milliseconds; once the
// run's deadline has passed or its CancellationToken is cancelled, it records why (Trip) and calls
// `interrupt` — for SpiderMonkey JS_RequestInterruptCallback, the one JSAPI call that is meant to
// be made from another thread. The script's thread then sees reason() in its interrupt callback and
// stops.
//
//   JsWatchdog watchdog([cx] { JS_RequestInterruptCallback(cx); });
//   watchdog.Arm(Deadline(limits.timeout), &token);
//   ... run the script; in the interrupt callback: return watchdog.reason() == kNone ...
//   watchdog.Disarm();
//
// Cost: it parks when nothing has been armed for kParkAfter, so an idle sandbox costs no wake-ups;
// a busy sandbox (one expression after another) re-arms it without waking it (one uncontended
// lock). Interrupts are requested only to stop a run, never "just to check" (a spurious interrupt
// restarts a running regular expression; reference/js-engine.md pitfall 3).
//
// Thread-safe. Arm/Disarm are meant for the script's thread; reason() and Trip() for any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/engine/cancellation.h"

namespace ndx::engine::js_internal {

// Why a run was stopped from outside the script.
enum class StopReason : int {
  kNone = 0,
  kTimeout,    // the run's deadline passed
  kCancelled,  // its CancellationToken was cancelled
  kMemory,     // the heap cap was exceeded (tripped by the script's own thread)
};

class JsWatchdog {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // How often an armed watchdog polls the token and the clock.
  static constexpr absl::Duration kPollInterval = absl::Milliseconds(2);
  // How long the watchdog keeps polling after the last Disarm() before it parks.
  static constexpr absl::Duration kParkAfter = absl::Milliseconds(250);

  // Starts the thread. `interrupt` is called (from the watchdog thread, or from the thread that
  // calls Trip) each time a run is tripped; it must be cheap and thread-safe.
  explicit JsWatchdog(std::function<void()> interrupt);
  // Stops and joins the thread. `interrupt` is not called after this returns.
  ~JsWatchdog();

  JsWatchdog(const JsWatchdog&) = delete;
  JsWatchdog& operator=(const JsWatchdog&) = delete;

  // Starts watching a run that must end by `deadline` (SteadyTime::max() for none) and stop when
  // `cancel` (may be null; must outlive the run) is cancelled. Resets reason() to kNone.
  void Arm(SteadyTime deadline, const CancellationToken* cancel);

  // Stops watching. Returns true if the run was tripped (so an interrupt may still be pending).
  bool Disarm();

  // Records `reason` if nothing was recorded for this run yet, then calls `interrupt`.
  void Trip(StopReason reason);

  // Why the current (or last) run was tripped; kNone if it was not. Any thread; one atomic load.
  StopReason reason() const { return reason_.load(std::memory_order_acquire); }

  // Converts a run's timeout to a deadline; non-positive or infinite timeouts never expire.
  static SteadyTime Deadline(absl::Duration timeout);

 private:
  void Loop();
  void TripLocked(StopReason reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ArmedOrStopping() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return armed_ || stopping_; }

  const std::function<void()> interrupt_;
  std::atomic<StopReason> reason_{StopReason::kNone};

  mutable absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  SteadyTime deadline_ ABSL_GUARDED_BY(mu_) = SteadyTime::max();
  const CancellationToken* cancel_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread thread_;  // last: starts after every other member is initialized
};

}  // namespace ndx::engine::js_internal
