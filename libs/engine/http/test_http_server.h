// File: test_http_server.h (test-only)
//
// TestHttpServer: a small HTTP/1.1 server on 127.0.0.1, port 0, for the HttpClient tests. Requests
// are parsed with Boost.Beast; responses are written as raw bytes so that a route can misbehave on
// purpose (stall, drip, lie, break the protocol). One thread per connection, keep-alive honoured.
//
//   TestHttpServer server;
//   ASSERT_THAT(server.Start(), IsOk());
//   client.Perform({.url = server.Url("/status/404")}, nullptr);
//   EXPECT_EQ(server.RequestCount("/status/404"), 1);
//
// Routes (path, then query parameters):
//   /status/<code>[?reason=R&close=1]  <code>, body "status <code>"; reason phrase R, else a
//                              standard one; with close, the connection is closed after it
//   /endless-headers           a status line, then header lines forever
//   /headers                   200 with "X-Mixed-Case: Value" and two Set-Cookie headers
//   /echo                      200; body = request body; x-echo-method, x-echo-target and one
//                              x-echo-header-<lower-case name> per request header
//   /slow?ms=N                 answers 200 "slow" after N ms (or when the server stops)
//   /slow-body?ms=N            Content-Length 1000, sends 10 bytes, then one byte every N ms
//   /huge?bytes=N[&stall=1]    N bytes with a Content-Length; with stall, the headers only
//   /stream?bytes=N            N bytes chunked, without a Content-Length; endless when N is 0
//   /malformed                 "this is not HTTP" and closes
//   /truncated                 Content-Length 100, sends 10 bytes and closes
//   /redirect/<n>              302 to /redirect/<n-1> with x-hop: <n>; /redirect/0 is 200 "done"
//   /redirect-to?code=C&url=U  C with Location: U (U percent-encoded)
//   /loop                      302 to /loop
//   /gzip                      "hello, gzip" gzip-encoded, with Content-Encoding: gzip
//   anything else              404
//
// Thread-safe accessors; Stop() (also run by the destructor) wakes every stalled route.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ndx::engine::testing {

class TestHttpServer {
 public:
  struct Request {
    std::string method;
    std::string target;  // path and query, as received
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The value of the first header called `name` (case-insensitive), or "" when absent.
    std::string Header(absl::string_view name) const;
    bool HasHeader(absl::string_view name) const;
  };

  TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;
  ~TestHttpServer();

  // Binds 127.0.0.1:0 and starts accepting. INTERNAL when binding fails.
  absl::Status Start();
  // Closes the listener and every connection, wakes stalled routes, joins all threads.
  void Stop();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>" + path_and_query.
  std::string Url(absl::string_view path_and_query) const;

  // Requests fully received for `path` (without the query).
  int RequestCount(absl::string_view path) const;
  int TotalRequests() const;
  // Responses to `path` whose status line and headers were written.
  int ResponsesStarted(absl::string_view path) const;
  // TCP connections accepted so far.
  int Connections() const { return connections_.load(); }
  // Every request received, in order.
  std::vector<Request> Requests() const;

 private:
  struct Impl;
  struct Connection;

  void AcceptLoop();
  void Serve(Connection* connection);
  // Writes the response to `request`; returns false when the connection must be closed.
  bool Handle(Connection* connection, const Request& request);
  void MarkResponseStarted(const std::string& path);
  // Sleeps `d`, or less when the server stops. Returns true when it stops.
  bool WaitOrStop(absl::Duration d);

  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  std::vector<std::unique_ptr<Connection>> connection_list_;   // guarded by mu_
  std::vector<Request> requests_;                              // guarded by mu_
  std::map<std::string, int, std::less<>> request_counts_;     // guarded by mu_
  std::map<std::string, int, std::less<>> responses_started_;  // guarded by mu_
};

}  // namespace ndx::engine::testing
