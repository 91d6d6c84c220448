#pragma once

#include "absl/time/clock.h"
#include "tests/testing/time_scale.h"

namespace ndx::testing {

template <typename Condition>
bool WaitUntil(Condition condition, absl::Duration timeout, absl::Duration interval) {
  const absl::Time deadline = absl::Now() + TimeScaled(timeout);
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
  }
}

}  // namespace ndx::testing
