// File: grpc_server.h
//
// Starting a gRPC server the way every ndx process does: the given services, plus
// grpc.health.v1.Health and server reflection, on one listen address (port 0 = any; the bound port
// is reported).
//
//   NDX_ASSIGN_OR_RETURN(auto server, StartGrpcServer("0.0.0.0:50051",
//       {{&queue_service, QueueService::service_full_name()}}));
//   server.SetServing(true);      // health: SERVING for "" and every registered service
//   ...
//   server.Shutdown(absl::Seconds(5));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"

namespace ndx::common {

class GrpcServer {
 public:
  GrpcServer(std::unique_ptr<grpc::Server> server, int port, std::vector<std::string> names);
  GrpcServer(GrpcServer&&) = default;
  GrpcServer& operator=(GrpcServer&&) = default;
  ~GrpcServer();

  int port() const { return port_; }
  grpc::Server& server() { return *server_; }

  // Sets the health status of the whole server ("") and of each registered service.
  void SetServing(bool serving);

  // Stops accepting calls, lets calls in flight finish until `deadline` passes, then cancels them.
  // Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_;
  std::vector<std::string> service_names_;
};

// Builds and starts the server. UNAVAILABLE when the address cannot be bound. The services must
// outlive the returned server. Health starts NOT_SERVING: the caller sets SERVING once ready.
// A service to serve, with its full name for health checks (Generated::service_full_name()).
struct NamedService {
  grpc::Service* service;
  std::string name;
};

absl::StatusOr<GrpcServer> StartGrpcServer(const std::string& address,
                                           const std::vector<NamedService>& services);

// Blocks SIGTERM and SIGINT in the calling thread and in every thread it starts afterwards. Call at
// the top of main(), before any thread exists, then wait with WaitForShutdownSignal().
void BlockShutdownSignals();

// Waits until SIGTERM or SIGINT arrives (or `timeout` passes); returns the signal number, or 0 on
// timeout.
int WaitForShutdownSignal(absl::Duration timeout = absl::InfiniteDuration());

}  // namespace ndx::common
