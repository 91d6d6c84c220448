// File: http_conn.h
//
// Small HTTP and process helpers of the gateway and soak subcommands of ndx-bench: a blocking
// HTTP/1.1 keep-alive client for loopback (Content-Length bodies only), the request text, and the
// resident set size of a process.
//
//   HttpConn c;
//   NDX_RETURN_IF_ERROR(c.Connect(port));
//   NDX_ASSIGN_OR_RETURN(auto reply, c.Exchange(HttpRequestText("POST", "/api/executions", body)));
//   // reply.first: status code, reply.second: body
//
// An HttpConn is not thread-safe: one per thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ndx::bench {

// VmRSS of a process in KiB (0 when unreadable).
int64_t RssKb(int pid);

// "METHOD path HTTP/1.1" with Host, Content-Type: application/json and Content-Length (keep-alive).
std::string HttpRequestText(const std::string& method, const std::string& path,
                            const std::string& body);

class HttpConn {
 public:
  HttpConn() = default;
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;
  ~HttpConn();

  // Connects to 127.0.0.1:port (TCP_NODELAY). INTERNAL when it cannot.
  absl::Status Connect(int port);
  // Sends `request`, returns the status code and body of the answer. INTERNAL when the connection
  // fails or the answer cannot be parsed.
  absl::StatusOr<std::pair<int, std::string>> Exchange(const std::string& request);

 private:
  absl::Status Fill();
  int fd_ = -1;
  std::string buf_;
};

}  // namespace ndx::bench
