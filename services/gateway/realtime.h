// File: realtime.h
//
// RealtimeHub: the gateway's live connections.
//
//  - Socket.IO v4 at /socket.io/ (Engine.IO 4, WebSocket transport only; HTTP long-polling is
//    refused with Engine.IO's "Transport unknown" error, so clients must allow "websocket", as the
//    NodeDrop frontend does). Namespace "/" only; no binary packets. The server pings every
//    ping_interval and drops a client that does not answer within ping_timeout.
//    Client events: subscribe-execution (id, or {executionId, afterSeq}; replays the execution's
//    whole event log from afterSeq, default 0, then follows it live), unsubscribe-execution,
//    subscribe-workflow, unsubscribe-workflow, start-workflow-execution (ack {success,
//    executionId, message} or {success: false, error, code}). Server events: connected,
//    execution-event, execution-subscribed, execution-unsubscribed, workflow-subscribed,
//    workflow-unsubscribed, subscription-error ({executionId|workflowId, code, message}).
//  - A plain WebSocket at /ws with JSON frames (see dashboard and README): client
//    {"type":"subscribe","executionId","afterSeq"}, {"type":"unsubscribe","executionId"},
//    {"type":"subscribe-workflow","workflowId"}, {"type":"unsubscribe-workflow","workflowId"},
//    {"type":"subscribe-all"}, {"type":"unsubscribe-all"}, {"type":"ping"} (each may carry an
//    "id" that the reply echoes); server {"type":"welcome"}, {"type":"subscribed"},
//    {"type":"unsubscribed"}, {"type":"event","event":{...}}, {"type":"end","executionId",
//    "lastSeq"} (after the terminal event), {"type":"error","code","message",...}, {"type":"pong"}.
//
// Every subscription is checked against the caller's workspace (another workspace's execution is
// NOT_FOUND). A gRPC stream that breaks (queue restart, slow consumer) is resubscribed from the
// last seq delivered, so clients see no gap and no duplicate.
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/gateway/api_json.h"
#include "services/gateway/auth.h"
#include "services/gateway/http_server.h"
#include "services/gateway/queue_client.h"

namespace ndx::gateway {

class RealtimeHub {
 public:
  struct Options {
    absl::Duration ping_interval = absl::Seconds(25);
    absl::Duration ping_timeout = absl::Seconds(20);
    absl::Duration connect_timeout = absl::Seconds(45);
    int64_t max_payload = 1000000;
  };
  // Starts an execution for a user from a NodeDrop start payload; returns {executionId, ...} or
  // the status (as the REST route does).
  using StartFn = std::function<absl::StatusOr<Json>(const Principal&, const Json& payload)>;

  RealtimeHub(QueueClient& client, const Authenticator& auth, StartFn start, Options options);
  ~RealtimeHub();

  WsAccept AcceptSocketIo(const HttpRequest& request, std::shared_ptr<WsConnection> conn);
  WsAccept AcceptPlain(const HttpRequest& request, std::shared_ptr<WsConnection> conn);
  // A plain HTTP request under /socket.io/ (long-polling): refused as Engine.IO does.
  HttpResponse SocketIoHttp(const HttpRequest& request);

  int connected_clients() const;
  // Closes every connection and stops the ticker. Idempotent.
  void Shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ndx::gateway
