// ndx: the command line client of ndx (tools/ndx/cli.h documents the commands).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tools/ndx/cli.h"

int main(int argc, char** argv) {
  // Debian's abseil is built with Mutex deadlock detection on: every lock updates a process-wide
  // lock graph (GraphCycles) under an internal spin lock, 1-2% of CPU (bench/README.md), and
  // under TSan that spin lock is invisible, so the graph's updates are reported as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  ndx::cli::CliEnv env;
  if (const char* s = std::getenv("NDX_SERVER")) env.server = s;
  if (const char* w = std::getenv("NDX_WORKERS")) env.workers = w;
  return ndx::cli::RunCli(args, env, std::cout, std::cerr);
}
