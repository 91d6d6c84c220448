#include "services/gateway/gateway.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/log.h"
#include "libs/common/metrics.h"
#include "nlohmann/json.hpp"

namespace ndx::gateway {
namespace {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return JsonResponse(status,
                      {{"success", false}, {"error", {{"code", code}, {"message", message}}}});
}

std::string IsoNow() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

}  // namespace

Gateway::Gateway(config::GatewayConfig config)
    : config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("ndx_gateway_http_requests_total")
                    .Help("HTTP requests answered, by route and status class")
                    .Register(*registry_)) {
  common::RegisterProcessMetrics(*registry_, "ndx-gateway");
  queue_channel_ = grpc::CreateChannel(config_.queue_server, grpc::InsecureChannelCredentials());
}

Gateway::~Gateway() { Shutdown(); }

absl::StatusOr<int> Gateway::Start() {
  http_ = std::make_unique<HttpServer>([this](const HttpRequest& r) { return Handle(r); });
  return http_->Start(config_.http_address, config_.http_threads);
}

void Gateway::Shutdown() {
  if (http_ != nullptr) http_->Shutdown();
}

HttpResponse Gateway::Handle(const HttpRequest& request) {
  HttpResponse response;
  std::string route = "other";
  if (request.method == "GET" && (request.path == "/health" || request.path == "/api/health")) {
    route = "health";
    response = Health();
  } else if (request.method == "GET" && request.path == "/metrics") {
    route = "metrics";
    response.content_type = "text/plain; version=0.0.4";
    response.body = common::SerializeMetrics(*registry_);
  } else {
    response = ErrorResponse(404, "NOT_FOUND",
                             absl::StrCat("route not found: ", request.method, " ", request.path));
  }
  requests_.Add({{"route", route}, {"status", absl::StrCat(response.status / 100, "xx")}})
      .Increment();
  return response;
}

HttpResponse Gateway::Health() {
  // The queue service is reachable when its channel connects within a short deadline.
  const bool queue_ok =
      queue_channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  json body = {
      {"status", queue_ok ? "ok" : "degraded"},
      {"timestamp", IsoNow()},
      {"service", "ndx-gateway"},
      {"version", common::NdxVersion()},
      {"queue", {{"status", queue_ok ? "ok" : "error"}, {"server", config_.queue_server}}},
  };
  // 200 while the gateway itself serves; the body says whether its dependencies do.
  return JsonResponse(200, body);
}

}  // namespace ndx::gateway
