// The chaos scenario, bounded (chaos_scenario.h has what it does and checks): about 30 s of load
// with every kind of fault injected at least once, then the checks. PostgreSQL is stopped for 8 s
// here (20 s in `ndx-bench chaos`) to keep ./dev test short; completion TTL 20 s, so the keys of
// the executions that ended early in the run are checked gone. Prints the summary.
#include <cstdio>
#include <filesystem>

#include "gtest/gtest.h"
#include "tests/chaos/chaos_scenario.h"
#include "tests/testing/child_process.h"
#include "tests/testing/status_matchers.h"

namespace ndx::chaos {
namespace {

using ::ndx::testing::IsOk;

TEST(Chaos, NothingLostDuplicatedOrStuckUnderFaults) {
  ChaosOptions o;
  o.queue_binary = NDX_QUEUE_BIN;
  o.worker_binary = NDX_WORKER_BIN;
  o.gateway_binary = NDX_GATEWAY_BIN;
  o.sio_script = NDX_SOURCE_DIR "/tests/chaos/sio_chaos_clients.js";
  o.node_path = NDX_SOURCE_DIR "/tests/e2e/node_modules";
  o.log_dir = testing::MakeTempDir("ndx-chaos-test");
  o.load_duration = absl::Seconds(30);
  o.first_fault = absl::Seconds(2);
  o.fault_interval = absl::Seconds(3);
  o.pg_outage = absl::Seconds(8);
  o.completion_ttl_s = 20;
  o.drain_timeout = absl::Seconds(45);
  absl::StatusOr<ChaosReport> r = RunChaos(o);
  ASSERT_THAT(r, IsOk()) << "logs in " << o.log_dir;
  std::printf("%s", r->Summary().c_str());
  std::fflush(stdout);
  EXPECT_GT(r->accepted, 100);
  EXPECT_EQ(r->lost, 0);
  EXPECT_EQ(r->duplicated(), 0);
  EXPECT_EQ(r->stuck, 0);
  EXPECT_EQ(r->client_logs_whole, r->client_logs);
  EXPECT_GT(r->client_logs, 0);
  EXPECT_GT(r->client_reconnects, 0) << "the gateway restart made every client reconnect";
  EXPECT_GT(r->ttl_checked, 0);
  EXPECT_TRUE(r->Clean()) << "logs in " << o.log_dir;
  if (r->Clean()) {
    std::error_code ignored;
    std::filesystem::remove_all(o.log_dir, ignored);
  }
}

}  // namespace
}  // namespace ndx::chaos
