// File: http_server.h
//
// HttpServer: the gateway's HTTP/1.1 server (Boost.Beast, async, keep-alive), kept behind this
// small header so that Beast is compiled in one translation unit only (it is the heaviest TU of the
// project). Routes are a plain function from request to response; WebSocket upgrades go to an
// optional WsHandler that returns a listener for the connection (or refuses it with a response).
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
#include <string_view>
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

// Parses the first HTTP/1.x request in `bytes` as the server parses what it reads from a socket
// (Beast's parser and body limit; header names lower-cased, the target split at the first '?').
// INVALID_ARGUMENT when the bytes do not start with one complete request, RESOURCE_EXHAUSTED when
// its body is larger than `max_body_bytes` (the server answers 413). For tests and fuzz targets.
absl::StatusOr<HttpRequest> ParseHttpRequest(std::string_view bytes, size_t max_body_bytes);

// One accepted WebSocket connection (text frames only). Thread-safe: Send and Close may be called
// from any thread, before or after the handshake completes (frames queue until it does).
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queues one text frame. A connection whose queue exceeds Options::max_ws_queue_bytes (a client
  // that does not read) is closed; frames sent after Close are dropped.
  virtual void Send(std::string text) = 0;
  // Sends the queued frames, then a close frame (code 1000, or 1008 "policy violation" when
  // `policy_violation`), then closes.
  virtual void Close(bool policy_violation = false) = 0;
};

// Receives one connection's frames, one call at a time, in order.
class WsListener {
 public:
  virtual ~WsListener() = default;
  virtual void OnText(std::string text) = 0;
  // The connection is gone (closed by either side, or the handshake failed). Called once.
  virtual void OnClose() = 0;
};

// The answer to an upgrade request: a listener accepts it; without one, `refusal` is sent as a
// plain HTTP response.
struct WsAccept {
  std::shared_ptr<WsListener> listener;
  HttpResponse refusal;
};
using WsHandler = std::function<WsAccept(const HttpRequest&, std::shared_ptr<WsConnection>)>;

class HttpServer {
 public:
  struct Options {
    size_t max_body_bytes = 1 << 20;        // larger bodies get 413
    WsHandler ws_handler;                   // empty: upgrade requests go to the HttpHandler
    size_t max_ws_message_bytes = 1 << 20;  // larger incoming frames close the connection
    size_t max_ws_queue_bytes = 16 << 20;   // outgoing backlog above this closes the connection
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
