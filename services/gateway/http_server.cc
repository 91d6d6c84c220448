#include "services/gateway/http_server.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/version.hpp"
#include "boost/beast/websocket.hpp"

namespace ndx::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(75);

HttpRequest ToHttpRequest(const http::request<http::string_body>& req) {
  HttpRequest request;
  request.method = std::string(req.method_string());
  const std::string_view target(req.target().data(), req.target().size());
  const size_t q = target.find('?');
  request.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
  for (const auto& field : req) {
    std::string name(field.name_string());
    absl::AsciiStrToLower(&name);
    request.headers[std::move(name)] = std::string(field.value());
  }
  request.body = req.body();
  return request;
}

std::shared_ptr<http::response<http::string_body>> ToBeastResponse(HttpResponse response,
                                                                   bool keep_alive,
                                                                   unsigned version) {
  auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(response.status), version);
  res->set(http::field::server, "ndx-gateway");
  res->set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res->set(name, value);
  res->keep_alive(keep_alive);
  res->body() = std::move(response.body);
  res->prepare_payload();
  return res;
}

// One WebSocket connection after the upgrade. Every socket operation runs on the connection's
// strand; Send/Close from other threads post onto it.
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream stream, const HttpServer::Options& options)
      : ws_(std::move(stream)), options_(options) {}

  // Accepts the upgrade `req` and starts reading into `listener`.
  void Accept(http::request<http::string_body> req, std::shared_ptr<WsListener> listener) {
    listener_ = std::move(listener);
    req_ = std::move(req);
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = std::chrono::seconds(30);
    timeout.idle_timeout = std::chrono::seconds(60);  // with keep-alive pings: dead peers go
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "ndx-gateway"); }));
    ws_.read_message_max(options_.max_ws_message_bytes);
    ws_.async_accept(req_, beast::bind_front_handler(&WsSession::OnAccept, shared_from_this()));
  }

  // Answers the upgrade request with a plain HTTP response and closes.
  void Refuse(HttpResponse response, unsigned version) {
    auto res = ToBeastResponse(std::move(response), /*keep_alive=*/false, version);
    http::async_write(ws_.next_layer(), *res,
                      [self = shared_from_this(), res](beast::error_code, size_t) {
                        beast::error_code ec;
                        self->ws_.next_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
                      });
  }

  void Send(std::string text) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;
      queued_bytes_ += text.size();
      if (queued_bytes_ > options_.max_ws_queue_bytes) {
        // The client does not read: drop it rather than buffer without bound. It reconnects and
        // resumes from the last seq it received.
        queue_.clear();
        queued_bytes_ = 0;
        closing_ = true;
        policy_violation_ = true;
      } else {
        queue_.push_back(std::move(text));
      }
    }
    asio::post(ws_.get_executor(),
               beast::bind_front_handler(&WsSession::MaybeWrite, shared_from_this()));
  }

  void Close(bool policy_violation) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;
      closing_ = true;
      policy_violation_ = policy_violation;
    }
    asio::post(ws_.get_executor(),
               beast::bind_front_handler(&WsSession::MaybeWrite, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec) {
    if (ec) return Finish();
    open_ = true;
    DoRead();
    MaybeWrite();
  }

  void DoRead() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return Finish();
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (listener_ != nullptr) listener_->OnText(std::move(text));
    DoRead();
  }

  // On the strand: writes the next queued frame, or the close frame once the queue is empty.
  void MaybeWrite() {
    if (!open_ || writing_ || finished_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_.empty()) {
      writing_ = true;
      current_ = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= std::min(queued_bytes_, current_.size());
      ws_.text(true);
      ws_.async_write(asio::buffer(current_),
                      beast::bind_front_handler(&WsSession::OnWrite, shared_from_this()));
    } else if (closing_ && !close_sent_) {
      close_sent_ = true;
      writing_ = true;
      const websocket::close_reason reason(policy_violation_ ? websocket::close_code::policy_error
                                                             : websocket::close_code::normal);
      ws_.async_close(reason, [self = shared_from_this()](beast::error_code) {
        self->writing_ = false;
        // The read loop ends with the peer's close reply (or the timeout) and calls Finish.
      });
    }
  }

  void OnWrite(beast::error_code ec, size_t) {
    writing_ = false;
    current_.clear();
    if (ec) return Finish();
    MaybeWrite();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      queue_.clear();
    }
    std::shared_ptr<WsListener> listener = std::move(listener_);
    if (listener != nullptr) listener->OnClose();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  websocket::stream<beast::tcp_stream> ws_;
  const HttpServer::Options& options_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  std::shared_ptr<WsListener> listener_;
  // Strand-only state.
  bool open_ = false;
  bool writing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  std::string current_;
  // Shared with Send/Close callers.
  std::mutex mu_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool closing_ = false;
  bool policy_violation_ = false;
};

// One client connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpHandler& handler, const HttpServer::Options& options)
      : stream_(std::move(socket)), handler_(handler), options_(options) {}

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::DoRead, shared_from_this()));
  }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream) return Close();
    if (ec == http::error::body_limit) {
      return Send(MakeError(413, "PAYLOAD_TOO_LARGE",
                            absl::StrCat("request body is larger than ", options_.max_body_bytes,
                                         " bytes")),
                  /*keep_alive=*/false, 11);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      // A malformed request (bad request line, header, chunk or length): say so, then close.
      return Send(
          MakeError(400, "BAD_REQUEST", absl::StrCat("malformed HTTP request: ", ec.message())),
          /*keep_alive=*/false, 11);
    }
    if (ec) return;  // timeout or reset: drop the connection
    http::request<http::string_body> req = parser_->release();
    HttpRequest request = ToHttpRequest(req);
    if (websocket::is_upgrade(req) && options_.ws_handler) return Upgrade(std::move(req), request);
    HttpResponse response;
    try {
      response = handler_(request);
    } catch (const std::exception& e) {
      // Handlers return errors as responses; this is the last line of defence.
      response = MakeError(500, "INTERNAL_ERROR", "internal error");
    }
    Send(std::move(response), req.keep_alive(), req.version());
  }

  void Upgrade(http::request<http::string_body> req, const HttpRequest& request) {
    auto ws = std::make_shared<WsSession>(std::move(stream_), options_);
    WsAccept accept;
    try {
      accept = options_.ws_handler(request, ws);
    } catch (const std::exception& e) {
      accept.refusal = MakeError(500, "INTERNAL_ERROR", "internal error");
    }
    if (accept.listener == nullptr) return ws->Refuse(std::move(accept.refusal), req.version());
    ws->Accept(std::move(req), std::move(accept.listener));
  }

  static HttpResponse MakeError(int status, absl::string_view code, absl::string_view message) {
    HttpResponse r;
    r.status = status;
    r.body = absl::StrCat("{\"success\":false,\"error\":{\"code\":\"", code, "\",\"message\":\"",
                          message, "\"}}");
    return r;
  }

  void Send(HttpResponse response, bool keep_alive, unsigned version) {
    auto res = ToBeastResponse(std::move(response), keep_alive, version);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec) return;
                        if (!res->keep_alive()) return self->Close();
                        self->DoRead();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpHandler& handler_;
  const HttpServer::Options& options_;
};

}  // namespace

absl::StatusOr<HttpRequest> ParseHttpRequest(std::string_view bytes, size_t max_body_bytes) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(max_body_bytes);
  parser.eager(true);
  beast::error_code ec;
  while (!parser.is_done()) {
    const size_t used = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    if (ec == http::error::need_more || (!ec && used == 0)) {
      if (used > 0) continue;
      // All bytes given: the request ends here (put_eof requires that some were accepted).
      if (!parser.got_some()) return absl::InvalidArgumentError("bad HTTP request: no request");
      parser.put_eof(ec);
      if (!ec && !parser.is_done()) ec = http::error::partial_message;
    }
    if (ec == http::error::body_limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("request body is larger than ", max_body_bytes, " bytes"));
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad HTTP request: ", ec.message()));
  }
  return ToHttpRequest(parser.get());
}

struct HttpServer::Impl {
  Impl(HttpHandler h, Options o) : handler(std::move(h)), options(std::move(o)), acceptor(ioc) {}

  void DoAccept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      } else {
        std::make_shared<Session>(std::move(s), handler, options)->Run();
      }
      DoAccept();
    });
  }

  HttpHandler handler;
  Options options;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  bool stopped = false;
};

HttpServer::HttpServer(HttpHandler handler, Options options)
    : impl_(std::make_unique<Impl>(std::move(handler), std::move(options))) {}

HttpServer::~HttpServer() { Shutdown(); }

absl::StatusOr<int> HttpServer::Start(const std::string& address, int threads) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("not a host:port address: ", address));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("not an IP address: ", host));
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  Impl& s = *impl_;
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", ec.message()));
  }
  const int bound = s.acceptor.local_endpoint().port();
  s.DoAccept();
  for (int i = 0; i < threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
  return bound;
}

void HttpServer::Shutdown() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  asio::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
  });
  s.ioc.stop();
  for (std::thread& t : s.threads) t.join();
  s.threads.clear();
}

}  // namespace ndx::gateway
