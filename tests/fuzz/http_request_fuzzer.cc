// Fuzz target: one HTTP request as the gateway reads it from a socket: the bytes go through the
// server's parser (ParseHttpRequest: Beast, the 1 MiB body limit) and then through the gateway's
// routing, auth and body handling (Gateway::Handle), in-process: ndx-queue is a fake reached over
// an in-process gRPC channel (fake_queue.h). Requests with an Authorization header go to a gateway
// that checks JWTs (the seeds carry valid tokens); the others to one with NDX_AUTH=none, so that
// the fuzzer reaches every route.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "libs/common/check.h"
#include "services/gateway/gateway.h"
#include "services/gateway/http_server.h"
#include "tests/fuzz/fake_queue.h"

namespace {

ndx::gateway::Gateway* MakeGateway(bool auth_disabled) {
  static ndx::fuzz::FakeQueue* queue = new ndx::fuzz::FakeQueue();
  ndx::config::GatewayConfig c;
  c.http_address = "127.0.0.1:0";  // never started: Handle() needs no socket
  c.queue_server = "in-process";
  c.log_level = "error";
  c.http_threads = 1;
  c.auth_disabled = auth_disabled;
  c.jwt_secret = "0123456789abcdef0123456789abcdef";
  c.frontend_url = "*";
  c.executions_per_minute = 0;  // no rate limit: every start reaches the queue
  c.rpc_timeout = absl::Seconds(5);
  return new ndx::gateway::Gateway(c, queue->channel());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ndx::gateway::Gateway* open = MakeGateway(/*auth_disabled=*/true);
  static ndx::gateway::Gateway* jwt = MakeGateway(/*auth_disabled=*/false);
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ndx::gateway::HttpRequest> request =
      ndx::gateway::ParseHttpRequest(bytes, size_t{1} << 20);
  if (!request.ok()) return 0;
  ndx::gateway::Gateway* gateway = request->headers.contains("authorization") ? jwt : open;
  const ndx::gateway::HttpResponse response = gateway->Handle(*request);
  NDX_CHECK(response.status >= 100 && response.status <= 599);
  return 0;
}
