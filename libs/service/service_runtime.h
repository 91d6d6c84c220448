// File: service_runtime.h
//
// ServiceRuntime: what every ndx backend process (ndx-queue, ndx-worker) runs around its own
// services: the gRPC server (its services + grpc.health.v1 + reflection), the /metrics endpoint,
// the PostgreSQL pool, and a HealthMonitor that probes Redis and PostgreSQL every second and drives
// the gRPC health status (NOT_SERVING while either is unreachable).
//
//   ServiceRuntime::Options options{.name = "ndx-queue", .grpc_address = "0.0.0.0:50051", ...};
//   NDX_ASSIGN_OR_RETURN(auto runtime, ServiceRuntime::Start(std::move(options), registry));
//   runtime->grpc_port();
//   runtime->Shutdown(absl::Seconds(5));
//
// Thread-safe after Start().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/grpc_server.h"
#include "libs/common/health_monitor.h"
#include "libs/common/metrics.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "prometheus/registry.h"

namespace ndx::service {

class ServiceRuntime {
 public:
  struct Options {
    std::string name;             // "ndx-queue": used in logs and ndx_build_info
    std::string grpc_address;     // "host:port", port 0 = any
    std::string metrics_address;  // "host:port", port 0 = any
    redis::RedisOptions redis;    // probed with PING
    std::string database_url;     // the pool's conninfo; probed with SELECT 1
    std::vector<common::NamedService> services;
    // More readiness checks (e.g. the worker's wedged-consumer check); they run with the
    // Redis and PostgreSQL probes.
    std::vector<common::HealthMonitor::Probe> extra_probes;
    absl::Duration probe_interval = absl::Seconds(1);
  };

  // Starts metrics, then gRPC, then the health probes. Redis or PostgreSQL being down is not an
  // error: health is NOT_SERVING until they answer. UNAVAILABLE when an address cannot be bound;
  // INVALID_ARGUMENT when the database URL cannot be used. The services must outlive the runtime.
  static absl::StatusOr<std::unique_ptr<ServiceRuntime>> Start(
      Options options, std::shared_ptr<prometheus::Registry> registry);
  ~ServiceRuntime();

  int grpc_port() const { return grpc_.port(); }
  int metrics_port() const { return metrics_->port(); }
  bool serving() const { return health_->serving(); }
  pg::PgPool& pg() { return *pg_; }

  // Health goes NOT_SERVING, gRPC stops accepting and waits up to `grace` for calls in flight,
  // then probes and metrics stop. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  ServiceRuntime(common::GrpcServer grpc, std::unique_ptr<common::MetricsServer> metrics,
                 std::unique_ptr<pg::PgPool> pg, redis::RedisOptions redis);
  absl::Status PingRedis();

  common::GrpcServer grpc_;
  std::unique_ptr<common::MetricsServer> metrics_;
  std::unique_ptr<pg::PgPool> pg_;
  absl::Mutex probe_mu_;
  redis::RedisConnection probe_redis_ ABSL_GUARDED_BY(probe_mu_);
  std::unique_ptr<common::HealthMonitor> health_;
  bool shut_down_ = false;
};

}  // namespace ndx::service
