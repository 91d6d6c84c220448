#include "services/queue/queue_server.h"

#include "libs/common/status_macros.h"

namespace ndx::queue {

absl::Status QueueServer::Start() {
  NDX_ASSIGN_OR_RETURN(runtime_,
                       service::ServiceRuntime::Start({.name = "ndx-queue",
                                                       .grpc_address = config_.grpc_address,
                                                       .metrics_address = config_.metrics_address,
                                                       .redis = config_.common.redis,
                                                       .database_url = config_.common.database_url},
                                                      std::make_shared<prometheus::Registry>()));
  return absl::OkStatus();
}

}  // namespace ndx::queue
