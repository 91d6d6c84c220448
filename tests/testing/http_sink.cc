#include "tests/testing/http_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ndx::testing {

HttpSink::HttpSink(absl::Duration delay) : delay_(delay) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 512);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

HttpSink::~HttpSink() {
  stop_ = true;
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::unique_ptr<Connection>> workers;
  {
    absl::MutexLock lock(&mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w->thread.join();
}

std::string HttpSink::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

std::map<std::string, int> HttpSink::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

std::vector<absl::Time> HttpSink::call_times(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = times_.find(key);
  return it == times_.end() ? std::vector<absl::Time>{} : it->second;
}

int HttpSink::total() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [k, v] : counts_) n += v;
  return n;
}

void HttpSink::Accept() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    absl::MutexLock lock(&mu_);
    Reap();
    auto c = std::make_unique<Connection>();
    Connection* raw = c.get();
    c->thread = std::thread([this, fd, raw] {
      Serve(fd);
      raw->done = true;
    });
    workers_.push_back(std::move(c));
  }
}

void HttpSink::Reap() {
  auto ended = std::stable_partition(workers_.begin(), workers_.end(),
                                     [](const std::unique_ptr<Connection>& c) { return !c->done; });
  for (auto it = ended; it != workers_.end(); ++it) (*it)->thread.join();
  workers_.erase(ended, workers_.end());
}

// Serves keep-alive requests on one connection until the peer closes it or the sink stops.
void HttpSink::Serve(int fd) {
  std::string buf;
  char chunk[4096];
  while (!stop_) {
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (stop_) break;
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) {
        ::close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    if (header_end == std::string::npos) break;
    std::string key;
    size_t content_length = 0;
    for (absl::string_view line : absl::StrSplit(buf.substr(0, header_end), "\r\n")) {
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
      const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (name == "idempotency-key") key = std::string(value);
      if (name == "content-length") (void)absl::SimpleAtoi(value, &content_length);
    }
    while (buf.size() < header_end + 4 + content_length) {
      const ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) {
        ::close(fd);
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
    }
    buf.erase(0, header_end + 4 + content_length);
    int n;
    {
      const absl::Time now = absl::Now();
      absl::MutexLock lock(&mu_);
      n = ++counts_[key];
      times_[key].push_back(now);
    }
    // The delay ends early when the sink stops (tests must not wait for it at teardown).
    const absl::Time until = absl::Now() + delay_;
    while (!stop_ && absl::Now() < until) {
      absl::SleepFor(std::min(absl::Milliseconds(10), until - absl::Now()));
    }
    const std::string body = absl::StrCat("{\"ok\":true,\"n\":", n, "}");
    const std::string response = absl::StrCat(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
        "\r\n\r\n", body);
    if (::write(fd, response.data(), response.size()) < 0) break;
  }
  ::close(fd);
}

}  // namespace ndx::testing
