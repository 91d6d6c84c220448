// File: service_config.h
//
// The configuration of each ndx process, read from environment variables and validated at start.
// A bad or missing value stops the process with a message naming the variable (see EnvReader).
// README.md "Configuration" documents every variable, its default and its range; keep it in step.
//
//   absl::StatusOr<WorkerConfig> config = LoadWorkerConfig(ProcessEnv());
//   if (!config.ok()) { /* print config.status().message(), exit 2 */ }
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/redis/redis_url.h"
#include "libs/config/env_reader.h"

namespace ndx::config {

// Settings every process shares.
struct CommonConfig {
  std::string redis_url;          // REDIS_URL (required)
  redis::RedisOptions redis;      // parsed from REDIS_URL
  std::string database_url;       // DATABASE_URL (required by queue and worker)
  absl::Duration state_ttl;       // EXECUTION_STATE_TTL, seconds (86400)
  absl::Duration completion_ttl;  // EXECUTION_COMPLETION_TTL, seconds (3600)
  std::string queue;              // NDX_QUEUE ("default")
  std::string log_level;          // NDX_LOG_LEVEL (info)
  // The queue's policies (libs/queue QueueOptions), the same in every process of a deployment.
  absl::Duration lease;          // NDX_LEASE (5s): a claim's lease, renewed by its holder
  int max_stalls;                // NDX_MAX_STALLS (3): lease lapses before a job fails
  absl::Duration job_timeout;    // NDX_JOB_TIMEOUT (5m): default job deadline
  int max_attempts;              // NDX_MAX_ATTEMPTS (4): the first attempt + retries
  absl::Duration retry_backoff;  // NDX_RETRY_BACKOFF (2s): first retry delay, doubled
  double retry_jitter;           // NDX_RETRY_JITTER_PERCENT (0): delays up to this much shorter
  int64_t max_job_bytes;         // NDX_MAX_JOB_BYTES (1 MiB): job data limit
  int64_t max_queue_depth;       // NDX_MAX_QUEUE_DEPTH (0 = unlimited): waiting + delayed
  int64_t keep_finished;         // NDX_KEEP_FINISHED (10000): per finished-state index
  int64_t outbox_max;  // NDX_OUTBOX_MAX (100000): history writes queued while PostgreSQL is down
  int64_t history_retention_days;  // NDX_HISTORY_RETENTION_DAYS (0 = keep forever)
};

struct QueueConfig {
  CommonConfig common;
  std::string grpc_address;              // NDX_QUEUE_ADDR ("0.0.0.0:50051")
  std::string metrics_address;           // NDX_QUEUE_METRICS_ADDR ("0.0.0.0:9451")
  std::string default_execution_mode;    // NDX_DEFAULT_EXECUTION_MODE (queue | direct)
  absl::Duration shutdown_grace;         // NDX_SHUTDOWN_GRACE (30s)
  absl::Duration housekeeping_interval;  // NDX_HOUSEKEEPING_INTERVAL (1s)
  int direct_slots;  // NDX_DIRECT_SLOTS (5): direct-mode runners in ndx-queue; 0 = no direct mode
};

struct WorkerConfig {
  CommonConfig common;
  std::string grpc_address;              // NDX_WORKER_ADDR ("0.0.0.0:50052")
  std::string metrics_address;           // NDX_WORKER_METRICS_ADDR ("0.0.0.0:9452")
  int concurrency;                       // EXECUTION_WORKER_CONCURRENCY (5)
  absl::Duration shutdown_grace;         // NDX_SHUTDOWN_GRACE (30s)
  std::string worker_id;                 // NDX_WORKER_ID (hostname-pid)
  absl::Duration housekeeping_interval;  // NDX_HOUSEKEEPING_INTERVAL (1s)
  absl::Duration inline_wait;  // NDX_INLINE_WAIT (1s): longer waits park the job, free the slot
};

struct GatewayConfig {
  std::string http_address;       // NDX_GATEWAY_ADDR ("0.0.0.0:4000")
  std::string queue_server;       // NDX_QUEUE_SERVER ("127.0.0.1:50051")
  std::string log_level;          // NDX_LOG_LEVEL (info)
  int http_threads;               // NDX_GATEWAY_THREADS (2)
  absl::Duration shutdown_grace;  // NDX_SHUTDOWN_GRACE (30s)
  // Auth (services/gateway/auth.h). NDX_AUTH: "token" (default) or "none" (development only: no
  // authentication, no workspace scoping). With "token", NDX_JWT_SECRET or DATABASE_URL (NodeDrop
  // session tokens) must be set.
  bool auth_disabled = false;        // NDX_AUTH=none
  std::string jwt_secret;            // NDX_JWT_SECRET ("" = no JWTs; else at least 32 bytes)
  std::string database_url;          // DATABASE_URL ("" = no NodeDrop session tokens)
  std::string frontend_url;          // FRONTEND_URL ("http://localhost:3000"; "*" = any origin)
  int64_t max_body_bytes = 1 << 20;  // NDX_GATEWAY_MAX_BODY (1 MiB): larger bodies get 413
  int executions_per_minute = 60;    // NDX_EXECUTIONS_PER_MINUTE (60; 0 = unlimited), per user
  int executions_burst = 20;         // NDX_EXECUTIONS_BURST (20): starts allowed at once
  absl::Duration rpc_timeout;        // NDX_GATEWAY_RPC_TIMEOUT (10s): deadline of each queue call
};

// Each returns INVALID_ARGUMENT listing every bad or missing variable by name.
absl::StatusOr<QueueConfig> LoadQueueConfig(const EnvLookup& env);
absl::StatusOr<WorkerConfig> LoadWorkerConfig(const EnvLookup& env);
absl::StatusOr<GatewayConfig> LoadGatewayConfig(const EnvLookup& env);

}  // namespace ndx::config
