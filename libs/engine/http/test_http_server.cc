#include "libs/engine/http/test_http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ndx::engine::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr char kGzipHello[] =
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\xd7\x51\x48\xaf\xca\x2c\x00\x00"
    "\x4a\x9b\xb1\x5c\x0b\x00\x00\x00";  // gzip.compress(b"hello, gzip", mtime=0)

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int hex = 0;
    if (s[i] == '%' && i + 2 < s.size() && absl::SimpleHexAtoi(s.substr(i + 1, 2), &hex)) {
      out.push_back(static_cast<char>(hex));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(absl::string_view query) {
  std::map<std::string, std::string> params;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    params[PercentDecode(kv.first)] = PercentDecode(kv.second);
  }
  return params;
}

int IntParam(const std::map<std::string, std::string>& params, const std::string& name,
             int fallback) {
  int value = fallback;
  auto it = params.find(name);
  if (it != params.end() && !absl::SimpleAtoi(it->second, &value)) value = fallback;
  return value;
}

int64_t Int64Param(const std::map<std::string, std::string>& params, const std::string& name,
                   int64_t fallback) {
  int64_t value = fallback;
  auto it = params.find(name);
  if (it != params.end() && !absl::SimpleAtoi(it->second, &value)) value = fallback;
  return value;
}

absl::string_view Reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 302:
      return "Found";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    default:
      return "Whatever";
  }
}

std::string Head(int code, absl::string_view reason, absl::string_view extra_headers) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\n", extra_headers, "\r\n");
}

std::string Simple(int code, absl::string_view reason, absl::string_view extra_headers,
                   absl::string_view body) {
  return absl::StrCat(
      Head(code, reason, absl::StrCat(extra_headers, "Content-Length: ", body.size(), "\r\n")),
      body);
}

}  // namespace

struct TestHttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
};

struct TestHttpServer::Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::thread thread;

  bool Write(absl::string_view data) {
    beast::error_code ec;
    asio::write(socket, asio::buffer(data.data(), data.size()), ec);
    return !ec;
  }
};

std::string TestHttpServer::Request::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (absl::EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

bool TestHttpServer::Request::HasHeader(absl::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return absl::EqualsIgnoreCase(h.first, name); });
}

TestHttpServer::TestHttpServer() : impl_(std::make_unique<Impl>()) {}

TestHttpServer::~TestHttpServer() { Stop(); }

absl::Status TestHttpServer::Start() {
  beast::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::InternalError(absl::StrCat("test server: ", ec.message()));
  port_ = impl_->acceptor.local_endpoint().port();
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TestHttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_cv_.notify_all();
  }
  if (accept_thread_.joinable()) {
    // shutdown() wakes a thread blocked in accept(); the acceptor is closed once it has returned.
    ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
    accept_thread_.join();
  }
  beast::error_code ec;
  impl_->acceptor.close(ec);
  std::vector<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections.swap(connection_list_);
  }
  for (auto& c : connections) {
    ::shutdown(c->socket.native_handle(), SHUT_RDWR);
    if (c->thread.joinable()) c->thread.join();
    c->socket.close(ec);
  }
}

std::string TestHttpServer::Url(absl::string_view path_and_query) const {
  return absl::StrCat("http://127.0.0.1:", port_, path_and_query);
}

int TestHttpServer::RequestCount(absl::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = request_counts_.find(path);
  return it == request_counts_.end() ? 0 : it->second;
}

int TestHttpServer::TotalRequests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(requests_.size());
}

int TestHttpServer::ResponsesStarted(absl::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = responses_started_.find(path);
  return it == responses_started_.end() ? 0 : it->second;
}

std::vector<TestHttpServer::Request> TestHttpServer::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void TestHttpServer::MarkResponseStarted(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  ++responses_started_[path];
}

bool TestHttpServer::WaitOrStop(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(d),
                           [this] { return stopping_.load(); });
}

void TestHttpServer::AcceptLoop() {
  while (!stopping_) {
    beast::error_code ec;
    tcp::socket socket(impl_->io);
    impl_->acceptor.accept(socket, ec);
    if (ec) {
      if (stopping_) return;
      continue;
    }
    ++connections_;
    auto connection = std::make_unique<Connection>(std::move(socket));
    Connection* raw = connection.get();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      connection->socket.close(ec);
      return;
    }
    connection->thread = std::thread([this, raw] { Serve(raw); });
    connection_list_.push_back(std::move(connection));
  }
}

void TestHttpServer::Serve(Connection* connection) {
  beast::flat_buffer buffer;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    beast::error_code ec;
    http::read(connection->socket, buffer, parser, ec);
    if (ec) break;
    const auto& message = parser.get();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = message.body();
    const std::string path(absl::string_view(request.target).substr(0, request.target.find('?')));
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      ++request_counts_[path];
    }
    if (!Handle(connection, request)) break;
  }
  beast::error_code ec;
  connection->socket.shutdown(tcp::socket::shutdown_both, ec);
}

bool TestHttpServer::Handle(Connection* c, const Request& request) {
  const absl::string_view target(request.target);
  const size_t q = target.find('?');
  const std::string path(target.substr(0, q));
  const auto params = ParseQuery(q == absl::string_view::npos ? "" : target.substr(q + 1));
  const auto respond = [&](const std::string& response) {
    MarkResponseStarted(path);
    return c->Write(response);
  };

  if (absl::StartsWith(path, "/status/")) {
    int code = 0;
    if (!absl::SimpleAtoi(absl::string_view(path).substr(8), &code)) code = 400;
    auto it = params.find("reason");
    const std::string reason = it != params.end() ? it->second : std::string(Reason(code));
    const std::string body = absl::StrCat("status ", code);
    if (IntParam(params, "close", 0) == 0) return respond(Simple(code, reason, "", body));
    // Close right after the response, without announcing it ("Connection: close").
    respond(Simple(code, reason, "", body));
    return false;
  }
  if (path == "/headers") {
    return respond(Simple(
        200, "OK", "X-Mixed-Case: Value\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n", "headers"));
  }
  if (path == "/echo") {
    std::string extra = absl::StrCat("X-Echo-Method: ", request.method,
                                     "\r\nX-Echo-Target: ", request.target, "\r\n");
    for (const auto& [name, value] : request.headers) {
      absl::StrAppend(&extra, "X-Echo-Header-", name, ": ", value, "\r\n");
    }
    return respond(Simple(200, "OK", extra, request.body));
  }
  if (path == "/slow") {
    if (WaitOrStop(absl::Milliseconds(IntParam(params, "ms", 10000)))) return false;
    return respond(Simple(200, "OK", "", "slow"));
  }
  if (path == "/slow-body") {
    const absl::Duration gap = absl::Milliseconds(IntParam(params, "ms", 100));
    if (!respond(absl::StrCat(Head(200, "OK", "Content-Length: 1000\r\n"), std::string(10, 's')))) {
      return false;
    }
    for (int sent = 10; sent < 1000; ++sent) {
      if (WaitOrStop(gap) || !c->Write("s")) return false;
    }
    return true;
  }
  if (path == "/huge") {
    const int64_t bytes = Int64Param(params, "bytes", 1 << 20);
    if (!respond(Head(200, "OK", absl::StrCat("Content-Length: ", bytes, "\r\n")))) return false;
    if (request.method == "HEAD") return true;
    if (IntParam(params, "stall", 0) != 0) return !WaitOrStop(absl::Seconds(60));
    const std::string chunk(kChunk, 'h');
    for (int64_t left = bytes; left > 0 && !stopping_;) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(left, kChunk));
      if (!c->Write(absl::string_view(chunk).substr(0, n))) return false;
      left -= n;
    }
    return true;
  }
  if (path == "/stream") {
    const int64_t bytes = Int64Param(params, "bytes", 0);
    if (!respond(Head(200, "OK", "Transfer-Encoding: chunked\r\n"))) return false;
    const std::string chunk(kChunk, 's');
    for (int64_t left = bytes; (bytes == 0 || left > 0) && !stopping_;) {
      const size_t n = bytes == 0 ? kChunk : static_cast<size_t>(std::min<int64_t>(left, kChunk));
      if (!c->Write(
              absl::StrCat(absl::Hex(n), "\r\n", absl::string_view(chunk).substr(0, n), "\r\n"))) {
        return false;
      }
      left -= n;
    }
    return c->Write("0\r\n\r\n");
  }
  if (path == "/endless-headers") {
    if (!respond("HTTP/1.1 200 OK\r\n")) return false;
    const std::string line = absl::StrCat("X-Pad: ", std::string(1000, 'p'), "\r\n");
    while (!stopping_) {
      if (!c->Write(line)) return false;
    }
    return false;
  }
  if (path == "/malformed") {
    respond("this is not HTTP\r\n\r\n");
    return false;
  }
  if (path == "/truncated") {
    respond(absl::StrCat(Head(200, "OK", "Content-Length: 100\r\n"), std::string(10, 't')));
    return false;
  }
  if (absl::StartsWith(path, "/redirect/")) {
    int n = 0;
    if (!absl::SimpleAtoi(absl::string_view(path).substr(10), &n)) n = 0;
    if (n <= 0) return respond(Simple(200, "OK", "X-Hop: 0\r\n", "done"));
    return respond(Simple(302, "Found",
                          absl::StrCat("Location: /redirect/", n - 1, "\r\nX-Hop: ", n, "\r\n"),
                          absl::StrCat("redirect ", n)));
  }
  if (path == "/redirect-to") {
    const int code = IntParam(params, "code", 302);
    auto it = params.find("url");
    const std::string location = it != params.end() ? it->second : "/";
    return respond(Simple(code, "Redirect", absl::StrCat("Location: ", location, "\r\n"), ""));
  }
  if (path == "/loop") {
    return respond(Simple(302, "Found", "Location: /loop\r\n", "loop"));
  }
  if (path == "/gzip") {
    return respond(Simple(200, "OK", "Content-Encoding: gzip\r\n",
                          absl::string_view(kGzipHello, sizeof(kGzipHello) - 1)));
  }
  return respond(Simple(404, "Not Found", "", "no such route"));
}

}  // namespace ndx::engine::testing
