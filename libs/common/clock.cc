#include "libs/common/clock.h"

namespace ndx::common {
namespace {

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

Clock& RealClock() {
  static SystemClock* clock = new SystemClock();  // never destroyed: safe during static teardown
  return *clock;
}

}  // namespace ndx::common
