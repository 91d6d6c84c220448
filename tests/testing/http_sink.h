// File: http_sink.h
//
// HttpSink: a loopback HTTP server for multi-process tests that counts requests by their
// Idempotency-Key header (the http-request node sends "<executionId>:<runKey>" on non-GET
// requests), so a test can prove that no checkpointed node was called again. Answers every request
// with 200 {"ok": true, "n": <calls of this key so far>} after `delay`.
//
// Thread-safe. One thread per connection (tests keep the load small).
#pragma once

#include <atomic>
#include <map>
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
  int total() const;

 private:
  void Accept();
  void Serve(int fd);

  const absl::Duration delay_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndx::testing
