// File: http_server.h
//
// HttpServer: the gateway's HTTP/1.1 server (Boost.Beast, async, keep-alive), kept behind this
// small header so that Beast is compiled in one translation unit only (it is the heaviest TU of the
// project). Routes are a plain function from request to response.
//
//   HttpServer server([](const HttpRequest& r) { return HttpResponse{200, "text/plain", "ok"}; });
//   NDX_ASSIGN_OR_RETURN(int port, server.Start("127.0.0.1:0", /*threads=*/2));
//   ...
//   server.Shutdown();
//
// Thread-safe: the handler is called concurrently from the server's threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ndx::gateway {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // "/api/executions" (no query)
  std::string query;                           // "page=2&limit=10" (no '?')
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  struct Options {
    size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  };

  explicit HttpServer(HttpHandler handler) : HttpServer(std::move(handler), Options{}) {}
  HttpServer(HttpHandler handler, Options options);
  ~HttpServer();

  // Listens on `address` ("host:port"; port 0 = any) and serves with `threads` threads. Returns the
  // bound port; UNAVAILABLE when the address cannot be bound, INVALID_ARGUMENT when it is
  // malformed.
  absl::StatusOr<int> Start(const std::string& address, int threads);

  // Stops accepting, closes connections, joins the threads. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ndx::gateway
