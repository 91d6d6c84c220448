#include "tests/workflows/loopback_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/check.h"
#include "nlohmann/json.hpp"

namespace ndx::engine::testing {
namespace {

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string Response(int status, const std::string& content_type, const std::string& body,
                     const std::string& extra_headers = "") {
  return absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n",
                      extra_headers, "\r\n", body);
}

}  // namespace

LoopbackServer::LoopbackServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  NDX_CHECK(listen_fd_ >= 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  NDX_CHECK(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  NDX_CHECK(::listen(listen_fd_, 64) == 0);
  socklen_t len = sizeof(addr);
  NDX_CHECK(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

LoopbackServer::~LoopbackServer() {
  stop_ = true;
  thread_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);  // a handler blocked in recv returns
    handlers_done_.wait(lock, [this] { return handlers_ == 0; });
  }
  ::close(listen_fd_);
}

int LoopbackServer::Count(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(path);
  return it == counts_.end() ? 0 : it->second;
}

void LoopbackServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++handlers_;
      open_fds_.insert(fd);
    }
    std::thread([this, fd] {
      Handle(fd);
      std::lock_guard<std::mutex> lock(mu_);
      open_fds_.erase(fd);
      ::close(fd);
      --handlers_;
      handlers_done_.notify_all();  // under the lock: the destructor cannot return before this
    }).detach();
  }
}

void LoopbackServer::Handle(int fd) {
  std::string data;
  char buf[4096];
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
    header_end = data.find("\r\n\r\n");
  }
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 2) return;
  const std::string method = first[0];
  const std::string target = first[1];
  nlohmann::ordered_json headers = nlohmann::ordered_json::object();
  size_t content_length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length") (void)absl::SimpleAtoi(value, &content_length);
    if (name == "content-type" || name == "authorization" || name == "idempotency-key" ||
        name == "x-test") {
      headers[name] = value;
    }
  }
  std::string body = data.substr(header_end + 4);
  while (body.size() < content_length) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    body.append(buf, static_cast<size_t>(n));
  }
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  int count;
  {
    std::lock_guard<std::mutex> lock(mu_);
    count = ++counts_[path];
  }
  auto query_int = [&](absl::string_view key, int fallback) {
    for (absl::string_view kv : absl::StrSplit(query, '&')) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      int v;
      if (p.first == key && absl::SimpleAtoi(p.second, &v)) return v;
    }
    return fallback;
  };
  if (path == "/json") {
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(body, nullptr, false);
    nlohmann::ordered_json out = {
        {"method", method},
        {"path", path},
        {"query", query},
        {"body", parsed.is_discarded() ? nlohmann::ordered_json(body) : parsed},
        {"headers", headers}};
    WriteAll(fd, Response(200, "application/json; charset=utf-8", out.dump()));
  } else if (absl::StartsWith(path, "/status/")) {
    int code = 500;
    (void)absl::SimpleAtoi(path.substr(8), &code);
    WriteAll(fd, Response(code, "application/json", absl::StrCat("{\"status\":", code, "}")));
  } else if (path == "/text") {
    WriteAll(fd, Response(200, "text/plain", "hello"));
  } else if (absl::StartsWith(path, "/flaky/")) {
    if (count <= query_int("fail", 1)) {
      WriteAll(fd, Response(503, "application/json", "{\"ok\":false}"));
    } else {
      WriteAll(fd, Response(200, "application/json", "{\"ok\":true}"));
    }
  } else if (path == "/slow") {
    const int ms = query_int("ms", 1000);
    for (int waited = 0; waited < ms && !stop_; waited += 10) ::usleep(10 * 1000);
    WriteAll(fd, Response(200, "application/json", "{\"slow\":true}"));
  } else if (path == "/redirect") {
    WriteAll(fd, Response(302, "text/plain", "", "Location: /json\r\n"));
  } else {
    WriteAll(fd, Response(404, "text/plain", "not found"));
  }
}

}  // namespace ndx::engine::testing
