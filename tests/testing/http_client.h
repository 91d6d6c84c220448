// File: http_client.h
//
// A raw HTTP/1.1 client for tests over loopback: the request text is the caller's, byte for byte
// (hostile requests need exactly that: invalid UTF-8, bodies past a limit, odd headers), and each
// response is read by its Content-Length. Several requests go over one keep-alive connection.
//
//   std::vector<ndx::testing::HttpReply> r = ndx::testing::HttpExchange(
//       port, {ndx::testing::HttpRequestText("GET", "/health", "", "")});
//   EXPECT_EQ(r.at(0).status, 200);
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace ndx::testing {

struct HttpReply {
  int status = 0;  // 0 when no response arrived (connection refused, closed or timed out)
  std::string headers;
  std::string body;
};

// Sends `requests` one after the other on one connection to 127.0.0.1:`port`, reading one response
// after each. Returns the responses that arrived (fewer than the requests when the server closed
// the connection or `timeout` passed while reading).
std::vector<HttpReply> HttpExchange(int port, const std::vector<std::string>& requests,
                                    absl::Duration timeout = absl::Seconds(30));

// The text of one request: `token` as a Bearer Authorization (none when empty), `extra_headers`
// as given ("Name: value\r\n" lines), a JSON Content-Type, and "Connection: close" unless
// `keep_alive`.
std::string HttpRequestText(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body,
                            bool keep_alive = false, const std::string& extra_headers = "");

// One request on its own connection; HttpReply{} when nothing came back.
HttpReply HttpCall(int port, const std::string& method, const std::string& path,
                   const std::string& token, const std::string& body = "",
                   const std::string& extra_headers = "");

}  // namespace ndx::testing
