// File: time_scale.h
//
// Upper bounds on elapsed time in tests ("stopped within 300 ms"), scaled for slow builds: the
// sanitizer builds run 2-5x slower, so tests/sanitizers/run_sanitized.sh sets
// NDX_TEST_TIME_SCALE=3 and a bound written as TimeScaled(absl::Milliseconds(300)) becomes 900 ms
// there. Unset (or not a number >= 1): no scaling. Lower bounds are never scaled.
#pragma once

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace ndx::testing {

inline absl::Duration TimeScaled(absl::Duration bound) {
  static const double scale = [] {
    const char* value = std::getenv("NDX_TEST_TIME_SCALE");
    double s = 1;
    if (value == nullptr || !absl::SimpleAtod(value, &s) || s < 1) s = 1;
    return s;
  }();
  return bound * scale;
}

}  // namespace ndx::testing
