// File: http_sink.h
//
// HttpSink: a loopback HTTP server for multi-process tests that counts requests by their
// Idempotency-Key header (the http-request node sends "<executionId>:<runKey>" on non-GET
// requests), so a test can prove that no checkpointed node was called again. Answers every request
// with 200 {"ok": true, "n": <calls of this key so far>} after `delay`. It also keeps when each
// call arrived, so that a call can be compared with the moment its node was checkpointed.
//
// Thread-safe. One thread per connection, joined when the connection ends (the chaos run keeps a
// sink busy for minutes while workers come and go).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ndx::testing {

class HttpSink {
 public:
  explicit HttpSink(absl::Duration delay = absl::ZeroDuration());
  ~HttpSink();

  int port() const { return port_; }
  std::string url(const std::string& path) const;

  // Calls per Idempotency-Key ("" for requests without one).
  std::map<std::string, int> counts() const;
  // When each call of `key` arrived (its headers were read), in arrival order; empty if none.
  std::vector<absl::Time> call_times(const std::string& key) const;
  int total() const;

 private:
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void Accept();
  void Serve(int fd);
  // Joins the threads of connections that ended.
  void Reap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration delay_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<absl::Time>> times_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Connection>> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndx::testing
