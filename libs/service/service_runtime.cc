#include "libs/service/service_runtime.h"

#include <thread>

#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace ndx::service {

absl::StatusOr<std::unique_ptr<ServiceRuntime>> ServiceRuntime::Start(
    Options options, std::shared_ptr<prometheus::Registry> registry) {
  common::RegisterProcessMetrics(*registry, options.name);
  NDX_ASSIGN_OR_RETURN(std::unique_ptr<pg::PgPool> pg,
                       pg::PgPool::Create({.conninfo = options.database_url,
                                           .size = 4,
                                           .connect_timeout = absl::Seconds(2),
                                           .acquire_timeout = absl::Seconds(2)}));
  NDX_ASSIGN_OR_RETURN(std::unique_ptr<common::MetricsServer> metrics,
                       common::MetricsServer::Start(options.metrics_address, registry));
  NDX_ASSIGN_OR_RETURN(common::GrpcServer grpc,
                       common::StartGrpcServer(options.grpc_address, options.services));
  std::unique_ptr<ServiceRuntime> runtime(new ServiceRuntime(
      std::move(grpc), std::move(metrics), std::move(pg), std::move(options.redis)));
  ServiceRuntime* self = runtime.get();
  std::vector<common::HealthMonitor::Probe> probes = {
      {"redis", [self] { return self->PingRedis(); }},
      {"postgres", [self] { return self->pg_->Ping(); }}};
  for (auto& p : options.extra_probes) probes.push_back(std::move(p));
  runtime->health_ = std::make_unique<common::HealthMonitor>(
      std::move(probes), options.probe_interval,
      [self](bool serving) { self->grpc_.SetServing(serving); });
  runtime->health_->Start();
  return runtime;
}

ServiceRuntime::ServiceRuntime(common::GrpcServer grpc,
                               std::unique_ptr<common::MetricsServer> metrics,
                               std::unique_ptr<pg::PgPool> pg, redis::RedisOptions redis)
    : grpc_(std::move(grpc)),
      metrics_(std::move(metrics)),
      pg_(std::move(pg)),
      probe_redis_(std::move(redis)) {}

ServiceRuntime::~ServiceRuntime() { Shutdown(absl::ZeroDuration()); }

absl::Status ServiceRuntime::PingRedis() {
  absl::MutexLock lock(&probe_mu_);
  return probe_redis_.Ping();
}

void ServiceRuntime::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Probes first, so that they cannot flip health back to SERVING while the server drains.
  if (health_ != nullptr) health_->Stop();
  // The metrics server (civetweb) takes up to 2 s to stop (its listener polls in 2 s steps): stop
  // it while gRPC drains, not after, so that SIGTERM ends within the grace plus little.
  std::thread metrics_stop([this] { metrics_.reset(); });
  grpc_.Shutdown(grace);
  metrics_stop.join();
}

}  // namespace ndx::service
