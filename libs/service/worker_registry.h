// File: worker_registry.h
//
// Where ndx-worker processes announce themselves, so that anyone with access to Redis can list
// the live workers (QueueService.ListWorkers, and through it the gateway's dashboard) without
// knowing their addresses. Each worker writes its WorkerStatus, stamped with reported_at, into one
// Redis hash (field = worker id) every kReportInterval, and removes it when it stops. A worker
// killed with SIGKILL cannot remove its entry: List() leaves out, and deletes, entries older than
// kStaleAfter; and the hash itself expires 3 x kStaleAfter after the last report of any worker.
//
//   WorkerRegistry registry(pool);
//   NDX_RETURN_IF_ERROR(registry.Report(status, absl::Now()));      // worker, every 2 s
//   NDX_ASSIGN_OR_RETURN(auto workers, registry.List(absl::Now()));  // reader
//
// Thread-safe (calls borrow a connection from the pool). Errors: UNAVAILABLE / DEADLINE_EXCEEDED
// when Redis is unreachable or slow.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/redis/redis_client.h"
#include "ndx/v1/worker_service.pb.h"

namespace ndx::service {

class WorkerRegistry {
 public:
  static constexpr absl::Duration kReportInterval = absl::Seconds(2);
  static constexpr absl::Duration kStaleAfter = absl::Seconds(10);
  // The Redis hash: a single key, touched only by single-key commands (Cluster-ready).
  static constexpr char kKey[] = "ndx:workers";

  // `pool` must outlive the registry.
  explicit WorkerRegistry(redis::RedisPool& pool) : pool_(pool) {}

  // Writes `status` (its worker_id is the field) with reported_at = `now`.
  absl::Status Report(v1::WorkerStatus status, absl::Time now);

  // Removes a worker's entry (it stops). OK when there is none.
  absl::Status Remove(const std::string& worker_id);

  // The workers that reported within kStaleAfter of `now`, ordered by worker_id. Stale entries
  // and entries that do not parse are deleted.
  absl::StatusOr<std::vector<v1::WorkerStatus>> List(absl::Time now);

 private:
  redis::RedisPool& pool_;
};

}  // namespace ndx::service
