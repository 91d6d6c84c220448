// File: http_client.h
//
// HttpClient: outgoing HTTP for the http-request node, over libcurl. Timeouts, redirect limits, a
// response size cap, and cancellation that aborts a transfer in flight within ~50 ms.
//
//   HttpClient client;
//   HttpClientRequest req{.method = "POST", .url = "http://127.0.0.1:9/x", .body = "{}"};
//   req.headers.push_back({"Content-Type", "application/json"});
//   absl::StatusOr<HttpClientResponse> res = client.Perform(req, &token);
//
// An HTTP response of any status (2xx..5xx) is a successful Perform(): the caller decides what a
// status means. Errors (codes per engine/errors.h):
//   INVALID_ARGUMENT    malformed URL, unsupported scheme (only http and https, also as the target
//                       of a redirect), bad method, a header name or value that cannot be sent
//   UNAVAILABLE         DNS failure, connection refused or reset, TLS failure, a malformed or
//                       truncated response (treated like a proxy's 502: the server is at fault and
//                       a retry may reach a healthy one)
//   DEADLINE_EXCEEDED   the timeout passed (connect or whole transfer, redirects included)
//   FAILED_PRECONDITION too many redirects (a redirect loop)
//   RESOURCE_EXHAUSTED  the response body is larger than max_response_bytes
//   CANCELLED           the token was cancelled
// Messages name the method and URL ("GET http://127.0.0.1:9/x: connection refused"); they never
// contain header values or a password given in the URL.
//
// What the client does on its own (the caller sets every other header):
//   - the method is upper-cased; HEAD sends no body; the body is sent as given (with a
//     Content-Length) whenever it is non-empty, and always for POST, PUT and PATCH. libcurl's
//     default "Content-Type: application/x-www-form-urlencoded" and "Expect: 100-continue" are
//     suppressed unless the caller sets them.
//   - "Accept-Encoding" advertises gzip, deflate, br and zstd (unless the caller sets its own) and
//     the body is decoded; `headers` still show the server's content-encoding and content-length.
//     max_response_bytes applies to the decoded body.
//   - a default "User-Agent: ndx" unless the caller sets one.
//   - redirects (301, 302, 303, 307, 308 with a Location) are followed like a browser's fetch():
//     303, and 301/302 after a POST, continue as GET without a body (and without Content-Type);
//     307/308 repeat the method and body. When a redirect leaves the origin (scheme, host, port),
//     Authorization, Proxy-Authorization, Cookie and Host headers are dropped.
//
// Thread-safe: Perform() may be called concurrently. Each call uses its own curl easy handle; the
// connections (keep-alive) and the DNS cache live in a curl multi handle kept per thread, so
// consecutive requests from one thread to the same host reuse a connection.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/engine/cancellation.h"

namespace ndx::engine {

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;  // query already included
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(30);  // whole transfer, connect included; > 0
  bool follow_redirects = true;
  int max_redirects = 5;  // >= 0; 0 with follow_redirects makes any redirect an error
  size_t max_response_bytes = 16 << 20;
};

struct HttpClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, final response
  std::string body;
  std::string final_url;  // after redirects
  // The reason phrase of the status line ("Not Found"); the standard phrase for the status when
  // the server sent none (HTTP/2 never does). For the node's fullResponse `statusText`.
  std::string status_text;
};

// Initializes libcurl for the process (curl_global_init). Call once from main() before threads.
// Idempotent; Perform() calls it too, as a safety net.
void InitHttpClient();

class HttpClient {
 public:
  // Sends `request` and returns the final response (after redirects), or an error as listed at
  // the top of this file. `cancel` may be null; once it is cancelled, the transfer is aborted
  // within ~50 ms (also while waiting for a silent server) and CANCELLED is returned.
  absl::StatusOr<HttpClientResponse> Perform(const HttpClientRequest& request,
                                             const CancellationToken* cancel) const;
};

// Percent-encodes `s` for a query-string or form-body component (RFC 3986): every byte except
// A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex), a space included ("%20", never "+"), so that
// "a b&c" -> "a%20b%26c". The caller joins components: UrlEncode(k) + "=" + UrlEncode(v), "&".
std::string UrlEncode(absl::string_view s);

}  // namespace ndx::engine
