#include "libs/common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"

namespace ndx::common {
namespace {

using ::testing::HasSubstr;

std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
    (void)::write(fd, req.data(), req.size());
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

TEST(MetricsServer, ServesRegistryOnAnyPort) {
  auto registry = std::make_shared<prometheus::Registry>();
  RegisterProcessMetrics(*registry, "ndx-test");
  prometheus::BuildCounter()
      .Name("ndx_test_things_total")
      .Help("things")
      .Register(*registry)
      .Add({})
      .Increment(3);
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  const std::string body = HttpGet((*server)->port(), "/metrics");
  EXPECT_THAT(body, HasSubstr("ndx_test_things_total 3"));
  EXPECT_THAT(body, HasSubstr("ndx_build_info{service=\"ndx-test\""));
  EXPECT_THAT(body, HasSubstr("ndx_process_start_time_seconds"));
  EXPECT_EQ(SerializeMetrics(*registry).find("ndx_test_things_total 3") != std::string::npos, true);
}

// The exposer keeps only a weak reference: the server must keep the registry alive itself.
TEST(MetricsServer, KeepsTheRegistryAlive) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1:0", [] {
    auto registry = std::make_shared<prometheus::Registry>();
    RegisterProcessMetrics(*registry, "ndx-owned");
    return registry;
  }());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(HttpGet((*server)->port(), "/metrics"),
              HasSubstr("ndx_build_info{service=\"ndx-owned\""));
}

TEST(MetricsServer, BusyPortIsUnavailable) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<MetricsServer>> first =
      MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<MetricsServer>> second =
      MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()), registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot serve /metrics"));
}

}  // namespace
}  // namespace ndx::common
