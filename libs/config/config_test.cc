#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/config/env_reader.h"
#include "libs/config/service_config.h"
#include "tests/testing/status_matchers.h"

namespace ndx::config {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::map<std::string, std::string> ValidWorkerEnv() {
  return {{"REDIS_URL", "redis://:s3cret@127.0.0.1:7000/2"},
          {"DATABASE_URL", "postgresql://ndx@127.0.0.1:5433/ndx"}};
}

TEST(WorkerConfig, DefaultsWhenOnlyRequiredVariablesAreSet) {
  absl::StatusOr<WorkerConfig> c = LoadWorkerConfig(MapEnv(ValidWorkerEnv()));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->concurrency, 5);
  EXPECT_EQ(c->common.state_ttl, absl::Seconds(86400));
  EXPECT_EQ(c->common.completion_ttl, absl::Seconds(3600));
  EXPECT_EQ(c->common.queue, "default");
  EXPECT_EQ(c->grpc_address, "0.0.0.0:50052");
  EXPECT_EQ(c->shutdown_grace, absl::Seconds(30));
  EXPECT_EQ(c->common.redis.password, "s3cret");
  EXPECT_EQ(c->common.redis.db, 2);
  EXPECT_EQ(c->common.redis.port, 7000);
  EXPECT_FALSE(c->worker_id.empty());
}

TEST(WorkerConfig, ReadsEveryVariable) {
  auto env = ValidWorkerEnv();
  env["EXECUTION_WORKER_CONCURRENCY"] = "12";
  env["EXECUTION_STATE_TTL"] = "600";
  env["EXECUTION_COMPLETION_TTL"] = "60";
  env["NDX_QUEUE"] = "high-priority";
  env["NDX_WORKER_ADDR"] = "127.0.0.1:0";
  env["NDX_WORKER_METRICS_ADDR"] = "[::]:9999";
  env["NDX_SHUTDOWN_GRACE"] = "1500ms";
  env["NDX_WORKER_ID"] = "w1";
  env["NDX_LOG_LEVEL"] = "debug";
  absl::StatusOr<WorkerConfig> c = LoadWorkerConfig(MapEnv(env));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->concurrency, 12);
  EXPECT_EQ(c->common.state_ttl, absl::Seconds(600));
  EXPECT_EQ(c->common.completion_ttl, absl::Seconds(60));
  EXPECT_EQ(c->common.queue, "high-priority");
  EXPECT_EQ(c->grpc_address, "127.0.0.1:0");
  EXPECT_EQ(c->metrics_address, "[::]:9999");
  EXPECT_EQ(c->shutdown_grace, absl::Milliseconds(1500));
  EXPECT_EQ(c->worker_id, "w1");
  EXPECT_EQ(c->common.log_level, "debug");
}

// One row per configuration error: the variable, its bad value, and what the message must say.
struct BadValue {
  const char* variable;
  const char* value;
  const char* says;
};

constexpr BadValue kBadWorkerValues[] = {
    {"EXECUTION_WORKER_CONCURRENCY", "abc", "is not an integer"},
    {"EXECUTION_WORKER_CONCURRENCY", "0", "out of range"},
    {"EXECUTION_WORKER_CONCURRENCY", "100000", "out of range"},
    {"EXECUTION_STATE_TTL", "-5", "out of range"},
    {"EXECUTION_STATE_TTL", "1h", "is not an integer"},
    {"EXECUTION_COMPLETION_TTL", "0", "out of range"},
    {"NDX_SHUTDOWN_GRACE", "soon", "is not a duration"},
    {"NDX_SHUTDOWN_GRACE", "2h", "out of range"},
    {"NDX_WORKER_ADDR", "localhost", "not a listen address"},
    {"NDX_WORKER_ADDR", "127.0.0.1:70000", "not a listen address"},
    {"NDX_WORKER_METRICS_ADDR", ":9", "not a listen address"},
    {"NDX_QUEUE", "a{b}", "not a queue name"},
    {"NDX_LOG_LEVEL", "verbose", "not one of"},
    {"REDIS_URL", "http://x", "REDIS_URL"},
    {"REDIS_URL", "redis://127.0.0.1:notaport", "REDIS_URL"},
    {"DATABASE_URL", "mysql:/x", "not a PostgreSQL URI"},
};

TEST(WorkerConfig, EachBadValueIsRejectedNamingTheVariable) {
  for (const BadValue& bad : kBadWorkerValues) {
    SCOPED_TRACE(std::string(bad.variable) + "=" + bad.value);
    auto env = ValidWorkerEnv();
    env[bad.variable] = bad.value;
    EXPECT_THAT(LoadWorkerConfig(MapEnv(env)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(std::string(bad.variable) + ":"), HasSubstr(bad.says))));
  }
}

TEST(WorkerConfig, MissingRequiredVariablesAreAllNamed) {
  EXPECT_THAT(LoadWorkerConfig(MapEnv({})), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     AllOf(HasSubstr("REDIS_URL: required"),
                                                           HasSubstr("DATABASE_URL: required"))));
}

TEST(WorkerConfig, EmptyValueCountsAsUnset) {
  auto env = ValidWorkerEnv();
  env["REDIS_URL"] = "";
  EXPECT_THAT(LoadWorkerConfig(MapEnv(env)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("REDIS_URL: required")));
}

TEST(WorkerConfig, PasswordNeverAppearsInErrors) {
  auto env = ValidWorkerEnv();
  env["REDIS_URL"] = "redis://:hunter2@127.0.0.1:bad/0";
  absl::StatusOr<WorkerConfig> c = LoadWorkerConfig(MapEnv(env));
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("hunter2"))));
}

TEST(QueueConfig, DefaultsAndModes) {
  auto env = ValidWorkerEnv();
  absl::StatusOr<QueueConfig> c = LoadQueueConfig(MapEnv(env));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->grpc_address, "0.0.0.0:50051");
  EXPECT_EQ(c->default_execution_mode, "queue");
  env["NDX_DEFAULT_EXECUTION_MODE"] = "direct";
  ASSERT_THAT(LoadQueueConfig(MapEnv(env)), IsOk());
  EXPECT_EQ(LoadQueueConfig(MapEnv(env))->default_execution_mode, "direct");
  env["NDX_DEFAULT_EXECUTION_MODE"] = "inline";
  EXPECT_THAT(LoadQueueConfig(MapEnv(env)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("NDX_DEFAULT_EXECUTION_MODE: \"inline\" is not one of")));
}

TEST(GatewayConfig, NeedsNoDatabaseOrRedisAndValidatesItsAddress) {
  const std::string secret(32, 'k');
  absl::StatusOr<GatewayConfig> c = LoadGatewayConfig(MapEnv({{"NDX_JWT_SECRET", secret}}));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->http_address, "0.0.0.0:4000");
  EXPECT_EQ(c->queue_server, "127.0.0.1:50051");
  EXPECT_FALSE(c->auth_disabled);
  EXPECT_EQ(c->frontend_url, "http://localhost:3000");
  EXPECT_EQ(c->executions_per_minute, 60);
  EXPECT_THAT(LoadGatewayConfig(MapEnv({{"NDX_JWT_SECRET", secret}, {"NDX_GATEWAY_ADDR", "4000"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NDX_GATEWAY_ADDR:")));
  EXPECT_THAT(LoadGatewayConfig(MapEnv({{"NDX_JWT_SECRET", secret}, {"NDX_GATEWAY_THREADS", "0"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NDX_GATEWAY_THREADS:")));
}

TEST(GatewayConfig, AuthIsOnByDefaultAndNeedsASecretOrSessions) {
  EXPECT_THAT(LoadGatewayConfig(MapEnv({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NDX_JWT_SECRET: required")));
  EXPECT_THAT(LoadGatewayConfig(MapEnv({{"NDX_JWT_SECRET", "short"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 32 bytes")));
  EXPECT_THAT(LoadGatewayConfig(MapEnv({{"DATABASE_URL", "postgresql://x@127.0.0.1/x"}})), IsOk());
  absl::StatusOr<GatewayConfig> dev = LoadGatewayConfig(MapEnv({{"NDX_AUTH", "none"}}));
  ASSERT_THAT(dev, IsOk());
  EXPECT_TRUE(dev->auth_disabled);
  EXPECT_THAT(LoadGatewayConfig(MapEnv({{"NDX_AUTH", "off"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NDX_AUTH:")));
}

TEST(EnvReader, DurationAcceptsSecondsAndUnits) {
  EnvReader env(MapEnv({{"A", "45"}, {"B", "250ms"}, {"C", "1m30s"}}));
  EXPECT_EQ(env.Duration("A", absl::ZeroDuration(), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(45));
  EXPECT_EQ(env.Duration("B", absl::ZeroDuration(), absl::ZeroDuration(), absl::Hours(1)),
            absl::Milliseconds(250));
  EXPECT_EQ(env.Duration("C", absl::ZeroDuration(), absl::ZeroDuration(), absl::Hours(1)),
            absl::Seconds(90));
  EXPECT_THAT(env.status(), IsOk());
}

TEST(EnvReader, BoolAcceptsCommonSpellings) {
  EnvReader env(MapEnv({{"A", "YES"}, {"B", "off"}, {"C", "maybe"}}));
  EXPECT_TRUE(env.Bool("A", false));
  EXPECT_FALSE(env.Bool("B", true));
  EXPECT_TRUE(env.Bool("C", true));
  EXPECT_THAT(env.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("C: \"maybe\" is not a boolean")));
}

}  // namespace
}  // namespace ndx::config
