// File: child_process.h
//
// ChildProcess: a program started as a direct child of the test, so that it can be signalled
// (SIGTERM, SIGKILL) and reaped reliably (toolchain.md: daemonized servers become zombies of the
// sandbox's PID 1 after kill -9). Output goes to a log file that tests can read. A child started
// from the main thread is SIGKILLed by the kernel if the test process dies first (a crash, a
// ctest timeout), so no server outlives its test.
//
//   ndx::testing::ChildProcess p;
//   ASSERT_THAT(p.Start({"/usr/bin/redis-server", "--port", "0"}, "/tmp/x/redis.log"), IsOk());
//   p.Signal(SIGKILL);
//   int status = p.Wait();
//
// Not thread-safe. The destructor kills (SIGKILL) and reaps a child that is still running.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndx::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] (looked up on PATH) with the arguments, stdout and stderr appended to
  // `log_path`, and `env` added to (or replacing entries of) this process's environment.
  // Returns FAILED_PRECONDITION if a child is still running, INTERNAL if spawning failed.
  absl::Status Start(const std::vector<std::string>& argv, const std::string& log_path,
                     const std::map<std::string, std::string>& env = {});

  // Sends `signo`; no-op when nothing runs.
  void Signal(int signo);

  // Waits for the child to exit; returns its raw wait status (see WIFEXITED etc.), or -1 if none.
  int Wait();

  // Waits at most `timeout`; returns the raw wait status, or DEADLINE_EXCEEDED if it still runs.
  absl::StatusOr<int> WaitFor(absl::Duration timeout);

  // True while a started child has not been reaped (checked without blocking).
  bool Running();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then close).
int FreePort();

// A fresh directory under $TMPDIR (or /tmp), mode 0755, removed by the caller (or left for
// post-mortem reading: tests keep it when they fail).
std::string MakeTempDir(const std::string& prefix);

// The whole content of a file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Polls `condition` every `interval` until it returns true or `timeout` passes. Returns whether it
// became true. For tests: wait on a condition with a deadline, never sleep-and-hope. `timeout` is
// an upper bound on elapsed time, so the sanitizer builds scale it (TimeScaled, time_scale.h).
template <typename Condition>
bool WaitUntil(Condition condition, absl::Duration timeout,
               absl::Duration interval = absl::Milliseconds(10));

}  // namespace ndx::testing

#include "tests/testing/child_process_inl.h"
