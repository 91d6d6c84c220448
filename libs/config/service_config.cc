#include "libs/config/service_config.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ndx::config {
namespace {

constexpr absl::Duration kMaxTtl = absl::Hours(24 * 365);

bool IsQueueName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

CommonConfig ReadCommon(EnvReader& env, bool database_required) {
  CommonConfig c;
  c.redis_url = env.RequiredString("REDIS_URL", "e.g. redis://127.0.0.1:6379/0");
  if (!c.redis_url.empty()) {
    absl::StatusOr<redis::RedisOptions> parsed = redis::ParseRedisUrl(c.redis_url);
    if (parsed.ok()) {
      c.redis = *parsed;
    } else {
      env.AddError("REDIS_URL", parsed.status().message());
    }
  }
  c.database_url = database_required
                       ? env.RequiredString("DATABASE_URL", "e.g. postgresql://user@host:5432/db")
                       : env.String("DATABASE_URL", "");
  if (!c.database_url.empty() && !absl::StartsWith(c.database_url, "postgresql://") &&
      !absl::StartsWith(c.database_url, "postgres://") && !absl::StrContains(c.database_url, "=")) {
    env.AddError("DATABASE_URL",
                 "not a PostgreSQL URI (postgresql://...) nor a key=value connection string");
  }
  c.state_ttl =
      absl::Seconds(env.Int("EXECUTION_STATE_TTL", 86400, 60, absl::ToInt64Seconds(kMaxTtl)));
  c.completion_ttl =
      absl::Seconds(env.Int("EXECUTION_COMPLETION_TTL", 3600, 1, absl::ToInt64Seconds(kMaxTtl)));
  c.queue = env.String("NDX_QUEUE", "default");
  if (!IsQueueName(c.queue)) {
    env.AddError("NDX_QUEUE",
                 absl::StrCat("\"", c.queue, "\" is not a queue name (1-64 of A-Z a-z 0-9 - _ .)"));
  }
  c.log_level = env.OneOf("NDX_LOG_LEVEL", "info", {"debug", "info", "warn", "error"});
  c.lease = env.Duration("NDX_LEASE", absl::Seconds(5), absl::Milliseconds(500), absl::Minutes(10));
  c.max_stalls = static_cast<int>(env.Int("NDX_MAX_STALLS", 3, 0, 1000));
  c.job_timeout =
      env.Duration("NDX_JOB_TIMEOUT", absl::Minutes(5), absl::ZeroDuration(), absl::Hours(24 * 7));
  c.max_attempts = static_cast<int>(env.Int("NDX_MAX_ATTEMPTS", 4, 1, 100));
  c.retry_backoff =
      env.Duration("NDX_RETRY_BACKOFF", absl::Seconds(2), absl::ZeroDuration(), absl::Hours(1));
  c.retry_jitter = static_cast<double>(env.Int("NDX_RETRY_JITTER_PERCENT", 0, 0, 100)) / 100.0;
  c.max_job_bytes = env.Int("NDX_MAX_JOB_BYTES", 1 << 20, 1024, 512 << 20);
  c.max_queue_depth = env.Int("NDX_MAX_QUEUE_DEPTH", 0, 0, int64_t{1} << 40);
  c.keep_finished = env.Int("NDX_KEEP_FINISHED", 10000, 0, int64_t{1} << 32);
  c.outbox_max = env.Int("NDX_OUTBOX_MAX", 100000, 1, int64_t{1} << 32);
  c.history_retention_days = env.Int("NDX_HISTORY_RETENTION_DAYS", 0, 0, 36500);
  return c;
}

absl::Duration ShutdownGrace(EnvReader& env) {
  return env.Duration("NDX_SHUTDOWN_GRACE", absl::Seconds(30), absl::ZeroDuration(),
                      absl::Hours(1));
}

std::string DefaultWorkerId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "worker", "-", ::getpid());
}

}  // namespace

absl::StatusOr<QueueConfig> LoadQueueConfig(const EnvLookup& lookup) {
  EnvReader env(lookup);
  QueueConfig c;
  c.common = ReadCommon(env, /*database_required=*/true);
  c.grpc_address = env.ListenAddress("NDX_QUEUE_ADDR", "0.0.0.0:50051");
  c.housekeeping_interval = env.Duration("NDX_HOUSEKEEPING_INTERVAL", absl::Seconds(1),
                                         absl::Milliseconds(50), absl::Minutes(1));
  c.metrics_address = env.ListenAddress("NDX_QUEUE_METRICS_ADDR", "0.0.0.0:9451");
  c.default_execution_mode = env.OneOf("NDX_DEFAULT_EXECUTION_MODE", "queue", {"queue", "direct"});
  c.direct_slots = static_cast<int>(env.Int("NDX_DIRECT_SLOTS", 5, 0, 1024));
  c.shutdown_grace = ShutdownGrace(env);
  if (absl::Status s = env.status(); !s.ok()) return s;
  return c;
}

absl::StatusOr<WorkerConfig> LoadWorkerConfig(const EnvLookup& lookup) {
  EnvReader env(lookup);
  WorkerConfig c;
  c.common = ReadCommon(env, /*database_required=*/true);
  c.grpc_address = env.ListenAddress("NDX_WORKER_ADDR", "0.0.0.0:50052");
  c.metrics_address = env.ListenAddress("NDX_WORKER_METRICS_ADDR", "0.0.0.0:9452");
  c.concurrency = static_cast<int>(env.Int("EXECUTION_WORKER_CONCURRENCY", 5, 1, 1024));
  c.housekeeping_interval = env.Duration("NDX_HOUSEKEEPING_INTERVAL", absl::Seconds(1),
                                         absl::Milliseconds(50), absl::Minutes(1));
  c.shutdown_grace = ShutdownGrace(env);
  c.worker_id = env.String("NDX_WORKER_ID", DefaultWorkerId());
  c.inline_wait =
      env.Duration("NDX_INLINE_WAIT", absl::Seconds(1), absl::ZeroDuration(), absl::Minutes(10));
  if (absl::Status s = env.status(); !s.ok()) return s;
  return c;
}

absl::StatusOr<GatewayConfig> LoadGatewayConfig(const EnvLookup& lookup) {
  EnvReader env(lookup);
  GatewayConfig c;
  c.http_address = env.ListenAddress("NDX_GATEWAY_ADDR", "0.0.0.0:4000");
  c.queue_server = env.String("NDX_QUEUE_SERVER", "127.0.0.1:50051");
  c.log_level = env.OneOf("NDX_LOG_LEVEL", "info", {"debug", "info", "warn", "error"});
  c.http_threads = static_cast<int>(env.Int("NDX_GATEWAY_THREADS", 2, 1, 64));
  c.shutdown_grace = ShutdownGrace(env);
  c.auth_disabled = env.OneOf("NDX_AUTH", "token", {"token", "none"}) == "none";
  c.jwt_secret = env.String("NDX_JWT_SECRET", "");
  c.database_url = env.String("DATABASE_URL", "");
  c.frontend_url = env.String("FRONTEND_URL", "http://localhost:3000");
  c.max_body_bytes = env.Int("NDX_GATEWAY_MAX_BODY", 1 << 20, 1024, 64 << 20);
  c.executions_per_minute = static_cast<int>(env.Int("NDX_EXECUTIONS_PER_MINUTE", 60, 0, 1000000));
  c.executions_burst = static_cast<int>(env.Int("NDX_EXECUTIONS_BURST", 20, 1, 1000000));
  c.rpc_timeout = env.Duration("NDX_GATEWAY_RPC_TIMEOUT", absl::Seconds(10),
                               absl::Milliseconds(100), absl::Minutes(10));
  if (!c.jwt_secret.empty() && c.jwt_secret.size() < 32) {
    env.AddError("NDX_JWT_SECRET", "must be at least 32 bytes (HS256 key)");
  }
  if (!c.auth_disabled && c.jwt_secret.empty() && c.database_url.empty()) {
    env.AddError("NDX_JWT_SECRET",
                 "required when NDX_AUTH=token and DATABASE_URL is not set (set NDX_AUTH=none "
                 "only for development without authentication)");
  }
  if (absl::Status s = env.status(); !s.ok()) return s;
  return c;
}

}  // namespace ndx::config
