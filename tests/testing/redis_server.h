// File: redis_server.h
//
// RedisServer: a real redis-server started by the test as a direct child, on a free TCP port of
// 127.0.0.1 (never 6379), with its own data directory. It can be killed with SIGKILL and restarted
// on the same port and directory (with AOF enabled, the data survives), which the reliability tests
// need.
//
//   ndx::testing::RedisServer redis;                // AOF off
//   ASSERT_THAT(redis.Start(), IsOk());
//   std::string url = redis.url();                   // "redis://127.0.0.1:<port>/0"
//   redis.Kill();                                    // SIGKILL, reaped
//   ASSERT_THAT(redis.Restart(), IsOk());            // same port, ready to serve
//
// Start/Restart wait until the server answers PING (at most 10 s). The destructor stops the server
// and removes its directory. Not thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "tests/testing/child_process.h"

namespace ndx::testing {

class RedisServer {
 public:
  struct Options {
    bool append_only = false;  // --appendonly yes, fsync always: data survives kill -9
    std::string password;      // --requirepass when not empty
  };

  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options options) : options_(std::move(options)) {}
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer();

  // Picks a port and starts the server. INTERNAL when it does not come up (the log is in the
  // message).
  absl::Status Start();
  // SIGKILL, then reap. The port is free at once.
  void Kill();
  // SIGTERM, then reap.
  void Stop();
  // Starts again on the same port and directory.
  absl::Status Restart();

  int port() const { return port_; }
  // The server's process id (-1 when it is not running), e.g. to read its memory use.
  int pid() const { return process_.pid(); }
  const std::string& dir() const { return dir_; }
  // "redis://[:password@]127.0.0.1:<port>/<db>"
  std::string url(int db = 0) const;

 private:
  absl::Status Launch();

  Options options_;
  int port_ = 0;
  std::string dir_;
  ChildProcess process_;
};

}  // namespace ndx::testing
