// Tests of the test support itself: the fixtures really start, kill and restart real servers.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
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

// A test process that dies (a crash, ctest's timeout) takes the servers it started with it.
TEST(ChildProcess, ChildDiesWithTheProcessThatStartedIt) {
  const std::string dir = MakeTempDir("ndx-child");
  int pid_pipe[2];
  ASSERT_EQ(::pipe(pid_pipe), 0);
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    // The forked copy's only thread is its main thread, like a test binary's gtest thread.
    ChildProcess sleeper;
    pid_t pid = -1;
    if (sleeper.Start({"sleep", "300"}, dir + "/log").ok()) pid = sleeper.pid();
    if (::write(pid_pipe[1], &pid, sizeof(pid)) != sizeof(pid)) ::_exit(1);
    ::pause();
    ::_exit(0);
  }
  ::close(pid_pipe[1]);
  pid_t sleeper_pid = -1;
  ASSERT_EQ(::read(pid_pipe[0], &sleeper_pid, sizeof(sleeper_pid)),
            static_cast<ssize_t>(sizeof(sleeper_pid)));
  ::close(pid_pipe[0]);
  ASSERT_GT(sleeper_pid, 0);
  ::kill(middle, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(middle, &status, 0), middle);
  // Gone, or a zombie waiting for PID 1 to reap it: either way no longer running.
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::string stat = ReadFile(absl::StrCat("/proc/", sleeper_pid, "/stat"));
        if (stat.empty()) return true;
        const size_t paren = stat.rfind(')');
        return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
      },
      absl::Seconds(10)))
      << "sleep " << sleeper_pid << " outlived the process that started it";
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
