#include "tests/testing/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ndx::testing {
namespace {

// Sends PING over a plain socket and checks for +PONG (or -NOAUTH, which also means "up").
bool Answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char kPing[] = "PING\r\n";
    if (::write(fd, kPing, sizeof(kPing) - 1) == sizeof(kPing) - 1) {
      char buf[64] = {};
      const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
      // "-LOADING" means the AOF is still being read: not ready yet.
      ok = n > 0 && (std::strncmp(buf, "+PONG", 5) == 0 || std::strncmp(buf, "-NOAUTH", 7) == 0);
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

RedisServer::~RedisServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status RedisServer::Start() {
  if (dir_.empty()) dir_ = MakeTempDir("ndx-redis");
  if (dir_.empty()) return absl::InternalError("cannot create a temporary directory");
  port_ = FreePort();
  return Launch();
}

absl::Status RedisServer::Restart() {
  if (port_ == 0) return absl::FailedPreconditionError("RedisServer was never started");
  return Launch();
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> argv = {"redis-server",
                                   "--bind",
                                   "127.0.0.1",
                                   "--port",
                                   std::to_string(port_),
                                   "--dir",
                                   dir_,
                                   "--save",
                                   "",
                                   "--daemonize",
                                   "no",
                                   "--appendonly",
                                   options_.append_only ? "yes" : "no"};
  if (options_.append_only) {
    argv.insert(argv.end(), {"--appendfsync", "always"});
  }
  if (!options_.password.empty()) {
    argv.insert(argv.end(), {"--requirepass", options_.password});
  }
  const std::string log = absl::StrCat(dir_, "/redis.log");
  // The port may have been taken between FreePort() and here, or (after Kill) be in use for a
  // moment: try a few times.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (absl::Status s = process_.Start(argv, log); !s.ok()) return s;
    if (WaitUntil([&] { return !process_.Running() || Answers(port_); }, absl::Seconds(10))) {
      if (process_.Running()) return absl::OkStatus();
    }
    process_.Signal(SIGKILL);
    process_.Wait();
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::InternalError(
      absl::StrCat("redis-server did not start on port ", port_, "; log:\n", ReadFile(log)));
}

void RedisServer::Kill() {
  process_.Signal(SIGKILL);
  process_.Wait();
}

void RedisServer::Stop() {
  if (!process_.Running()) return;
  process_.Signal(SIGTERM);
  if (!process_.WaitFor(absl::Seconds(10)).ok()) Kill();
}

std::string RedisServer::url(int db) const {
  if (options_.password.empty()) return absl::StrCat("redis://127.0.0.1:", port_, "/", db);
  return absl::StrCat("redis://:", options_.password, "@127.0.0.1:", port_, "/", db);
}

}  // namespace ndx::testing
