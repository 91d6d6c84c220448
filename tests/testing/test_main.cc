// The main() of every test binary (ndx_cc_test, cmake/ndx_helpers.cmake): GoogleTest's, plus the
// process settings the ndx binaries make at the start of their own main().
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

int main(int argc, char** argv) {
  // As in services/*/main.cc: Debian's abseil has Mutex deadlock detection on, which costs CPU
  // and, under TSan, has its lock graph's updates (under an uninstrumented spin lock) reported
  // as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  testing::InitGoogleMock(&argc, argv);
  return RUN_ALL_TESTS();
}
