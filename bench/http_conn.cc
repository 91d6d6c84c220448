#include "bench/http_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "tests/testing/child_process.h"

namespace ndx::bench {

// VmRSS of a process in KiB (0 when unreadable).
int64_t RssKb(int pid) {
  const std::string status = testing::ReadFile(absl::StrCat("/proc/", pid, "/status"));
  const size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  int64_t kb = 0;
  const size_t end = status.find('\n', at);
  std::string v(absl::StripAsciiWhitespace(status.substr(at + 6, end - at - 6)));
  v = v.substr(0, v.find(' '));
  return absl::SimpleAtoi(v, &kb) ? kb : 0;
}

HttpConn::~HttpConn() {
  if (fd_ >= 0) close(fd_);
}

absl::Status HttpConn::Connect(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return absl::InternalError("connect to the gateway failed");
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return absl::OkStatus();
}

absl::StatusOr<std::pair<int, std::string>> HttpConn::Exchange(const std::string& request) {
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return absl::InternalError("send failed");
    sent += n;
  }
  size_t header_end;
  while ((header_end = buf_.find("\r\n\r\n")) == std::string::npos) {
    NDX_RETURN_IF_ERROR(Fill());
  }
  const std::string head = absl::AsciiStrToLower(buf_.substr(0, header_end));
  int status = 0;
  if (head.size() < 12 || !absl::SimpleAtoi(head.substr(9, 3), &status)) {
    return absl::InternalError("bad status line");
  }
  size_t length = 0;
  const size_t cl = head.find("content-length:");
  if (cl != std::string::npos) {
    const size_t eol = head.find("\r\n", cl);
    std::string v(absl::StripAsciiWhitespace(head.substr(cl + 15, eol - cl - 15)));
    if (!absl::SimpleAtoi(v, &length)) return absl::InternalError("bad Content-Length");
  }
  while (buf_.size() < header_end + 4 + length) NDX_RETURN_IF_ERROR(Fill());
  std::string body = buf_.substr(header_end + 4, length);
  buf_.erase(0, header_end + 4 + length);
  return std::make_pair(status, std::move(body));
}

absl::Status HttpConn::Fill() {
  char chunk[16384];
  const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) return absl::InternalError("connection closed by the gateway");
  buf_.append(chunk, n);
  return absl::OkStatus();
}

std::string HttpRequestText(const std::string& method, const std::string& path,
                            const std::string& body) {
  return absl::StrCat(method, " ", path,
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: ",
                      body.size(), "\r\n\r\n", body);
}

}  // namespace ndx::bench
