// File: worker_service.h
//
// WorkerServiceImpl: WorkerService (proto/ndx/v1/worker_service.proto) over a WorkerRunner:
// GetStatus reports slots, running executions with their current node, counters and lease
// health; Drain stops claiming (and, with `wait`, waits up to `grace` for running executions).
//
// Thread-safe.
#pragma once

#include <string>

#include "ndx/v1/worker_service.grpc.pb.h"
#include "services/worker/worker_runner.h"

namespace ndx::worker {

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(WorkerRunner& runner, std::string queue);

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::WorkerStatus* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;

  void FillStatus(v1::WorkerStatus& out) const;

 private:
  WorkerRunner& runner_;
  const std::string queue_;
  const absl::Time started_at_;
};

}  // namespace ndx::worker
