#include "libs/common/health_monitor.h"

#include <atomic>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace ndx::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(HealthMonitor, ReportsInitialStateAndEveryChange) {
  std::atomic<bool> redis_up{true};
  absl::Mutex mu;
  std::vector<bool> reports;
  HealthMonitor monitor(
      {{"redis",
        [&] { return redis_up ? absl::OkStatus() : absl::UnavailableError("connection refused"); }},
       {"pg", [] { return absl::OkStatus(); }}},
      absl::Milliseconds(5), [&](bool serving) {
        absl::MutexLock lock(&mu);
        reports.push_back(serving);
      });
  monitor.Start();
  EXPECT_TRUE(monitor.serving());  // known when Start returns
  redis_up = false;
  ASSERT_TRUE(ndx::testing::WaitUntil([&] { return !monitor.serving(); }, absl::Seconds(5)));
  EXPECT_THAT(monitor.failures(), ElementsAre(HasSubstr("redis: UNAVAILABLE: connection refused")));
  redis_up = true;
  ASSERT_TRUE(ndx::testing::WaitUntil([&] { return monitor.serving(); }, absl::Seconds(5)));
  monitor.Stop();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(reports, ElementsAre(true, false, true));  // changes only, no repeats
}

}  // namespace
}  // namespace ndx::common
