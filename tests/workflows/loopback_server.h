// File: loopback_server.h (test-only)
//
// LoopbackServer: a tiny HTTP/1.1 server on 127.0.0.1, port 0, for the http-request node tests
// and the workflow corpus. One request per connection (Connection: close).
//
// Routes:
//   /json[?...]          200 application/json {method, path, query, body (parsed if JSON),
//                        headers: {content-type, authorization, idempotency-key, x-test}}
//   /status/<code>       <code>, application/json {"status": <code>}
//   /text                200 text/plain "hello"
//   /flaky/<name>?fail=N 503 for the first N requests to that name, then 200 {"ok": true}
//   /slow?ms=N           200 {"slow": true} after N ms
//   /redirect            302 to /json
//   anything else        404
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace ndx::engine::testing {

class LoopbackServer {
 public:
  LoopbackServer();
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Requests received for a path (without the query).
  int Count(const std::string& path) const;

 private:
  void Serve();
  void Handle(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, int> counts_;
  // Connections being handled (each on a detached thread); the destructor shuts them down and
  // waits until every handler is done with `this` (ASan saw a handler read stop_ after it).
  std::set<int> open_fds_;
  int handlers_ = 0;
  std::condition_variable handlers_done_;
};

}  // namespace ndx::engine::testing
