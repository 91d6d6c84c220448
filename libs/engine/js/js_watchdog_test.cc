#include "libs/engine/js/js_watchdog.h"

#include <atomic>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ndx::engine::js_internal {
namespace {

// Waits until `pred` holds or `limit` passes; returns whether it held.
template <typename Pred>
bool WaitFor(Pred pred, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (!pred()) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Microseconds(200));
  }
  return true;
}

TEST(JsWatchdog, TripsAtTheDeadline) {
  std::atomic<int> interrupts{0};
  JsWatchdog watchdog([&] { interrupts.fetch_add(1); });
  const absl::Time start = absl::Now();
  watchdog.Arm(JsWatchdog::Deadline(absl::Milliseconds(50)), nullptr);
  ASSERT_TRUE(WaitFor([&] { return interrupts.load() > 0; }, absl::Seconds(5)));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, absl::Milliseconds(50));
  EXPECT_LT(elapsed, absl::Milliseconds(50) + absl::Milliseconds(150));
  EXPECT_EQ(watchdog.reason(), StopReason::kTimeout);
  EXPECT_TRUE(watchdog.Disarm());
  EXPECT_EQ(interrupts.load(), 1);  // tripped once per run
}

TEST(JsWatchdog, TripsWhenTheTokenIsCancelled) {
  std::atomic<int> interrupts{0};
  JsWatchdog watchdog([&] { interrupts.fetch_add(1); });
  CancellationToken token;
  watchdog.Arm(JsWatchdog::Deadline(absl::InfiniteDuration()), &token);
  const absl::Time cancelled_at = absl::Now();
  token.Cancel(absl::CancelledError("stop"));
  ASSERT_TRUE(WaitFor([&] { return interrupts.load() > 0; }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(100));
  EXPECT_EQ(watchdog.reason(), StopReason::kCancelled);
  EXPECT_TRUE(watchdog.Disarm());
}

TEST(JsWatchdog, DisarmedRunIsNeverTripped) {
  std::atomic<int> interrupts{0};
  JsWatchdog watchdog([&] { interrupts.fetch_add(1); });
  watchdog.Arm(JsWatchdog::Deadline(absl::Milliseconds(20)), nullptr);
  EXPECT_FALSE(watchdog.Disarm());
  absl::SleepFor(absl::Milliseconds(60));  // well past the old deadline
  EXPECT_EQ(interrupts.load(), 0);
  EXPECT_EQ(watchdog.reason(), StopReason::kNone);
}

TEST(JsWatchdog, WakesFromParkingForTheNextRun) {
  std::atomic<int> interrupts{0};
  JsWatchdog watchdog([&] { interrupts.fetch_add(1); });
  absl::SleepFor(JsWatchdog::kParkAfter + absl::Milliseconds(50));  // let it park
  const absl::Time start = absl::Now();
  watchdog.Arm(JsWatchdog::Deadline(absl::Milliseconds(30)), nullptr);
  ASSERT_TRUE(WaitFor([&] { return interrupts.load() > 0; }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(30) + absl::Milliseconds(150));
  watchdog.Disarm();
}

TEST(JsWatchdog, FirstReasonWinsAndArmResetsIt) {
  std::atomic<int> interrupts{0};
  JsWatchdog watchdog([&] { interrupts.fetch_add(1); });
  watchdog.Arm(JsWatchdog::Deadline(absl::InfiniteDuration()), nullptr);
  watchdog.Trip(StopReason::kMemory);
  watchdog.Trip(StopReason::kTimeout);
  EXPECT_EQ(watchdog.reason(), StopReason::kMemory);
  EXPECT_EQ(interrupts.load(), 1);
  EXPECT_TRUE(watchdog.Disarm());
  watchdog.Trip(StopReason::kTimeout);  // not armed: ignored
  EXPECT_EQ(interrupts.load(), 1);
  watchdog.Arm(JsWatchdog::Deadline(absl::InfiniteDuration()), nullptr);
  EXPECT_EQ(watchdog.reason(), StopReason::kNone);
  EXPECT_FALSE(watchdog.Disarm());
}

TEST(JsWatchdog, NonPositiveTimeoutMeansNoDeadline) {
  EXPECT_EQ(JsWatchdog::Deadline(absl::ZeroDuration()), JsWatchdog::SteadyTime::max());
  EXPECT_EQ(JsWatchdog::Deadline(absl::InfiniteDuration()), JsWatchdog::SteadyTime::max());
  EXPECT_LT(JsWatchdog::Deadline(absl::Seconds(1)), JsWatchdog::SteadyTime::max());
}

}  // namespace
}  // namespace ndx::engine::js_internal
