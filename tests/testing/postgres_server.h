// File: postgres_server.h
//
// PostgresServer: a real PostgreSQL 15 cluster made by initdb in a fresh directory and run by the
// test as a direct child (as the `postgres` user, via setpriv, since initdb refuses root), on a
// free port of 127.0.0.1 (never 5432). fsync is off: tests want speed, not durability across
// power loss; synchronous_commit stays on, so a commit that returned survives Kill() (the WAL is
// in the OS page cache, which a killed postmaster does not lose).
//
//   ndx::testing::PostgresServer pg;
//   ASSERT_THAT(pg.Start(), IsOk());                       // about 1.5 s (initdb)
//   ASSERT_THAT(pg.CreateDatabase("ndx_test"), IsOk());
//   std::string url = pg.url("ndx_test");     // "postgresql://postgres@127.0.0.1:<port>/ndx_test"
//   pg.Kill(); ASSERT_THAT(pg.Restart(), IsOk());
//
// Not thread-safe. The destructor stops the server and removes the directory.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "tests/testing/child_process.h"

namespace ndx::testing {

class PostgresServer {
 public:
  PostgresServer() = default;
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer();

  // initdb + start; waits until it accepts connections (at most 20 s).
  absl::Status Start();
  // SIGKILL to the postmaster, then reap (its backends exit by themselves).
  void Kill();
  // Fast shutdown (SIGINT), then reap.
  void Stop();
  // Starts again on the same port and data directory, waits until ready.
  absl::Status Restart();

  // CREATE DATABASE `name` (via psql).
  absl::Status CreateDatabase(const std::string& name);

  int port() const { return port_; }
  // The server's process id (-1 when it is not running), e.g. to read its memory use.
  int pid() const { return process_.pid(); }
  // A libpq URI for `database` as the superuser `postgres` (trust auth).
  std::string url(const std::string& database = "postgres") const;

 private:
  absl::Status Launch();
  absl::Status WaitReady();

  int port_ = 0;
  std::string dir_;
  ChildProcess process_;
};

}  // namespace ndx::testing
