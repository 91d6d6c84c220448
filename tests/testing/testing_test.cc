// Tests of the test support itself: the fixtures really start, kill and restart real servers.
#include <signal.h>
#include <sys/wait.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::testing {
namespace {

using ::testing::HasSubstr;

// Runs redis-cli against `port` and returns its output.
std::string RedisCli(int port, const std::vector<std::string>& args) {
  const std::string dir = MakeTempDir("ndx-cli");
  const std::string log = dir + "/out";
  ChildProcess p;
  std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!p.Start(argv, log).ok()) return "";
  p.Wait();
  return ReadFile(log);
}

TEST(ChildProcess, ReportsExitStatus) {
  const std::string dir = MakeTempDir("ndx-child");
  ChildProcess p;
  ASSERT_THAT(p.Start({"sh", "-c", "echo hello $NDX_X; exit 3"}, dir + "/log", {{"NDX_X", "x"}}),
              IsOk());
  const int status = p.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(ReadFile(dir + "/log"), "hello x\n");
}

TEST(ChildProcess, WaitForTimesOutThenKillWorks) {
  const std::string dir = MakeTempDir("ndx-child");
  ChildProcess p;
  ASSERT_THAT(p.Start({"sleep", "30"}, dir + "/log"), IsOk());
  EXPECT_THAT(p.WaitFor(absl::Milliseconds(50)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(p.Running());
  p.Signal(SIGKILL);
  const int status = p.Wait();
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(ChildProcess, StartOfMissingProgramFails) {
  ChildProcess p;
  EXPECT_THAT(p.Start({"ndx-no-such-program"}, "/dev/null"), StatusIs(absl::StatusCode::kInternal));
}

TEST(RedisServer, KillAndRestartKeepsPortAndAofData) {
  RedisServer redis(RedisServer::Options{.append_only = true});
  ASSERT_THAT(redis.Start(), IsOk());
  EXPECT_NE(redis.port(), 6379);
  EXPECT_THAT(RedisCli(redis.port(), {"SET", "k", "v"}), HasSubstr("OK"));
  redis.Kill();
  EXPECT_EQ(RedisCli(redis.port(), {"GET", "k"}).find("v\n"), std::string::npos);
  ASSERT_THAT(redis.Restart(), IsOk());
  EXPECT_EQ(RedisCli(redis.port(), {"GET", "k"}), "v\n");
}

TEST(PostgresServer, StartsCreatesDatabaseAndRestartsAfterKill) {
  PostgresServer pg;
  ASSERT_THAT(pg.Start(), IsOk());
  EXPECT_NE(pg.port(), 5432);
  ASSERT_THAT(pg.CreateDatabase("ndx_fixture"), IsOk());
  EXPECT_THAT(pg.CreateDatabase("ndx_fixture"), StatusIs(absl::StatusCode::kInternal));
  pg.Kill();
  ASSERT_THAT(pg.Restart(), IsOk());
  // The database made before the kill is still there.
  EXPECT_THAT(pg.CreateDatabase("ndx_fixture"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("already exists")));
}

}  // namespace
}  // namespace ndx::testing
