// Fuzz target: the gateway's live connections (services/gateway/realtime.h). The bytes are one
// WebSocket connection, one text frame a line; the first line picks the endpoint ("/ws": the
// plain WebSocket, anything else: Socket.IO). Frames go to the session's OnText as the server
// delivers them (Engine.IO / Socket.IO packets via ParseSocketIoPacket, or /ws JSON frames); then
// the connection closes. The hub talks to a fake ndx-queue over an in-process gRPC channel
// (fake_queue.h), so subscriptions and starts run their real code paths without a socket. Auth is
// off (NDX_AUTH=none): tokens have their own target (jwt_fuzzer).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "services/gateway/api_json.h"
#include "services/gateway/auth.h"
#include "services/gateway/queue_client.h"
#include "services/gateway/realtime.h"
#include "services/gateway/socketio_packet.h"
#include "tests/fuzz/fake_queue.h"

namespace {

using ndx::gateway::Json;

class FakeConnection final : public ndx::gateway::WsConnection {
 public:
  void Send(std::string text) override { sent_bytes_ += text.size(); }
  void Close(bool policy_violation) override {}

 private:
  size_t sent_bytes_ = 0;
};

ndx::gateway::RealtimeHub& Hub() {
  static ndx::fuzz::FakeQueue* queue = new ndx::fuzz::FakeQueue();
  static ndx::gateway::QueueClient* client =
      new ndx::gateway::QueueClient(queue->channel(), absl::Seconds(5));
  static ndx::gateway::Authenticator* auth =
      new ndx::gateway::Authenticator({.disabled = true}, nullptr);
  // As the gateway's start function: the payload's workflow is converted and sent to the queue.
  auto start = [](const ndx::gateway::Principal&, const Json& payload) -> absl::StatusOr<Json> {
    if (!payload.is_object()) return absl::InvalidArgumentError("payload: must be a JSON object");
    ndx::v1::ExecuteWorkflowRequest req;
    if (auto wd = payload.find("workflowData"); wd != payload.end()) {
      if (absl::Status s =
              ndx::gateway::WorkflowFromJson(*wd, "workflowData", req.mutable_workflow());
          !s.ok()) {
        return s;
      }
    }
    if (auto td = payload.find("triggerData"); td != payload.end()) {
      req.set_trigger_data_json(td->dump());
    }
    ndx::v1::ExecuteWorkflowResponse resp;
    if (absl::Status s = client->Execute(req, &resp); !s.ok()) return s;
    return Json{{"executionId", resp.execution_id()}};
  };
  static ndx::gateway::RealtimeHub* hub =
      new ndx::gateway::RealtimeHub(*client, *auth, start, ndx::gateway::RealtimeHub::Options{});
  return *hub;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ndx::gateway::RealtimeHub& hub = Hub();
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<absl::string_view> frames = absl::StrSplit(text, '\n');
  const bool plain = frames[0] == "/ws";

  // The packet decoder on its own, for every frame.
  for (absl::string_view frame : frames) {
    if (!frame.empty() && frame[0] == '4') {
      (void)ndx::gateway::ParseSocketIoPacket(std::string_view(frame.data() + 1, frame.size() - 1));
    }
  }

  ndx::gateway::HttpRequest upgrade;
  upgrade.method = "GET";
  upgrade.path = plain ? "/ws" : "/socket.io/";
  upgrade.query = plain ? "" : "EIO=4&transport=websocket";
  auto conn = std::make_shared<FakeConnection>();
  ndx::gateway::WsAccept accept =
      plain ? hub.AcceptPlain(upgrade, conn) : hub.AcceptSocketIo(upgrade, conn);
  if (accept.listener == nullptr) return 0;
  for (size_t i = 1; i < frames.size(); ++i) accept.listener->OnText(std::string(frames[i]));
  accept.listener->OnClose();
  return 0;
}
