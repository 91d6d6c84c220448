// ndx: the command line client of ndx (tools/ndx/cli.h documents the commands).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tools/ndx/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  ndx::cli::CliEnv env;
  if (const char* s = std::getenv("NDX_SERVER")) env.server = s;
  if (const char* w = std::getenv("NDX_WORKERS")) env.workers = w;
  return ndx::cli::RunCli(args, env, std::cout, std::cerr);
}
