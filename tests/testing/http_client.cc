#include "tests/testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ndx::testing {

std::vector<HttpReply> HttpExchange(int port, const std::vector<std::string>& requests,
                                    absl::Duration timeout) {
  std::vector<HttpReply> out;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return out;
  }
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string buf;
  for (const std::string& req : requests) {
    // A server may answer (413) before it read the whole body: a failed send is not the end.
    size_t sent = 0;
    while (sent < req.size()) {
      const ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    size_t header_end;
    char chunk[65536];
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buf.append(chunk, n);
    }
    if (header_end == std::string::npos) break;
    HttpReply r;
    r.headers = buf.substr(0, header_end);
    if (r.headers.size() >= 12) (void)absl::SimpleAtoi(r.headers.substr(9, 3), &r.status);
    size_t length = 0;
    const std::string lower = absl::AsciiStrToLower(r.headers);
    if (size_t p = lower.find("content-length:"); p != std::string::npos) {
      length = std::stoul(lower.substr(p + 15));
    }
    while (buf.size() < header_end + 4 + length) {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      buf.append(chunk, n);
    }
    r.body = buf.substr(header_end + 4, length);
    buf.erase(0, std::min(buf.size(), header_end + 4 + length));
    out.push_back(std::move(r));
    if (sent < req.size()) break;
  }
  close(fd);
  return out;
}

std::string HttpRequestText(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body, bool keep_alive,
                            const std::string& extra_headers) {
  std::string req = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!token.empty()) absl::StrAppend(&req, "Authorization: Bearer ", token, "\r\n");
  absl::StrAppend(&req, extra_headers);
  absl::StrAppend(&req, "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n",
                  keep_alive ? "" : "Connection: close\r\n", "\r\n", body);
  return req;
}

HttpReply HttpCall(int port, const std::string& method, const std::string& path,
                   const std::string& token, const std::string& body,
                   const std::string& extra_headers) {
  std::vector<HttpReply> r =
      HttpExchange(port, {HttpRequestText(method, path, token, body, false, extra_headers)});
  return r.empty() ? HttpReply{} : r[0];
}

}  // namespace ndx::testing
