#include "services/gateway/realtime.h"

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/common/json_depth.h"
#include "libs/common/log.h"
#include "services/gateway/socketio_packet.h"

namespace ndx::gateway {
namespace {

std::string RandomId() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1) ^ static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  return absl::StrCat(absl::Hex(n, absl::kZeroPad16));
}

bool Retryable(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace

// A live client: its principal and subscriptions, whatever the protocol.
class ClientSession : public WsListener, public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(RealtimeHub::Impl& hub, std::shared_ptr<WsConnection> conn)
      : hub_(hub), conn_(std::move(conn)), created_(absl::Now()) {}

  // Called by the hub's ticker about every 100 ms.
  virtual void Tick(absl::Time now);

  void OnClose() override;

  bool closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 protected:
  struct Sub {
    v1::SubscribeRequest request;  // selector and workspace; positions are filled per launch
    int64_t last_seq = 0;
    std::string cursor;
    std::shared_ptr<EventSubscription> stream;
    uint64_t gen = 0;
    int failures = 0;
    absl::Time retry_at = absl::InfiniteFuture();
  };

  // Protocol hooks (called with mu_ held: they only queue frames).
  virtual void EmitEvent(const std::string& key, const Json& event) = 0;
  virtual void EmitEnd(const std::string& key, int64_t last_seq) {}
  virtual void EmitSubscriptionError(const std::string& key, const absl::Status& status) = 0;

  // Checks that the principal may see `execution_id` (GetExecution in its workspace).
  absl::Status CheckExecution(const std::string& execution_id);
  // Adds (or replaces) the subscription `key` and starts its stream.
  void AddSubscription(const std::string& key, v1::SubscribeRequest request, int64_t after_seq);
  // Removes `key`; false when it did not exist.
  bool RemoveSubscription(const std::string& key);

  void Send(std::string frame) { conn_->Send(std::move(frame)); }

  RealtimeHub::Impl& hub_;
  std::shared_ptr<WsConnection> conn_;
  const absl::Time created_;
  absl::Mutex mu_;
  std::optional<Principal> principal_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

 private:
  void Launch(const std::string& key);
  void OnStreamEvent(const std::string& key, uint64_t gen, const v1::ExecutionEvent& e);
  void OnStreamDone(const std::string& key, uint64_t gen, const absl::Status& status);

  std::map<std::string, Sub> subs_ ABSL_GUARDED_BY(mu_);
};

struct RealtimeHub::Impl {
  Impl(QueueClient& c, const Authenticator& a, StartFn s, Options o)
      : client(c), auth(a), start(std::move(s)), options(o) {}

  void Register(std::shared_ptr<ClientSession> s) {
    absl::MutexLock lock(&mu);
    sessions.push_back(s);
  }

  void TickerLoop() {
    while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
      std::vector<std::shared_ptr<ClientSession>> live;
      {
        absl::MutexLock lock(&mu);
        std::vector<std::weak_ptr<ClientSession>> kept;
        for (auto& w : sessions) {
          if (auto s = w.lock(); s != nullptr && !s->closed()) {
            live.push_back(s);
            kept.push_back(w);
          }
        }
        sessions = std::move(kept);
        connected = static_cast<int>(live.size());
      }
      const absl::Time now = absl::Now();
      for (auto& s : live) s->Tick(now);
    }
  }

  QueueClient& client;
  const Authenticator& auth;
  StartFn start;
  Options options;
  absl::Mutex mu;
  std::vector<std::weak_ptr<ClientSession>> sessions ABSL_GUARDED_BY(mu);
  std::atomic<int> connected{0};
  absl::Notification stop;
  std::thread ticker;
  bool shut_down = false;
};

void ClientSession::Tick(absl::Time now) {
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    for (auto& [key, sub] : subs_) {
      if (sub.retry_at <= now) {
        sub.retry_at = absl::InfiniteFuture();
        due.push_back(key);
      }
    }
  }
  for (const std::string& key : due) Launch(key);
}

void ClientSession::OnClose() {
  std::map<std::string, Sub> subs;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    subs.swap(subs_);
  }
  for (auto& [key, sub] : subs) {
    if (sub.stream != nullptr) sub.stream->Cancel();
  }
}

absl::Status ClientSession::CheckExecution(const std::string& execution_id) {
  v1::GetExecutionRequest req;
  req.set_execution_id(execution_id);
  req.set_view(v1::EXECUTION_VIEW_BASIC);
  {
    absl::MutexLock lock(&mu_);
    if (!principal_) return absl::UnauthenticatedError("not connected");
    req.set_workspace_id(principal_->workspace_id);
  }
  if (execution_id.empty()) return absl::InvalidArgumentError("executionId is required");
  v1::Execution e;
  return hub_.client.Get(req, &e);
}

void ClientSession::AddSubscription(const std::string& key, v1::SubscribeRequest request,
                                    int64_t after_seq) {
  std::shared_ptr<EventSubscription> old;
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || !principal_) return;
    request.set_workspace_id(principal_->workspace_id);
    Sub& sub = subs_[key];
    old = std::move(sub.stream);
    ++sub.gen;
    sub.request = std::move(request);
    sub.last_seq = after_seq;
    sub.cursor.clear();
    sub.failures = 0;
    sub.retry_at = absl::InfiniteFuture();
  }
  if (old != nullptr) old->Cancel();
  Launch(key);
}

bool ClientSession::RemoveSubscription(const std::string& key) {
  std::shared_ptr<EventSubscription> stream;
  {
    absl::MutexLock lock(&mu_);
    auto it = subs_.find(key);
    if (it == subs_.end()) return false;
    stream = std::move(it->second.stream);
    subs_.erase(it);
  }
  if (stream != nullptr) stream->Cancel();
  return true;
}

void ClientSession::Launch(const std::string& key) {
  v1::SubscribeRequest request;
  uint64_t gen = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = subs_.find(key);
    if (closed_ || it == subs_.end()) return;
    Sub& sub = it->second;
    gen = ++sub.gen;
    request = sub.request;
    if (request.has_execution_id()) {
      request.set_after_seq(sub.last_seq);
    } else {
      request.set_after_cursor(sub.cursor);
    }
  }
  // Subscribe outside the lock: gRPC may call back on another thread at once.
  std::weak_ptr<ClientSession> weak = weak_from_this();
  std::shared_ptr<EventSubscription> stream = hub_.client.Subscribe(
      request,
      [weak, key, gen](const v1::ExecutionEvent& e) {
        if (auto s = weak.lock()) s->OnStreamEvent(key, gen, e);
      },
      [weak, key, gen](const absl::Status& status) {
        if (auto s = weak.lock()) s->OnStreamDone(key, gen, status);
      });
  absl::MutexLock lock(&mu_);
  auto it = subs_.find(key);
  if (closed_ || it == subs_.end() || it->second.gen != gen) {
    stream->Cancel();
    return;
  }
  it->second.stream = std::move(stream);
}

void ClientSession::OnStreamEvent(const std::string& key, uint64_t gen,
                                  const v1::ExecutionEvent& e) {
  absl::MutexLock lock(&mu_);
  auto it = subs_.find(key);
  if (closed_ || it == subs_.end() || it->second.gen != gen) return;
  Sub& sub = it->second;
  if (sub.request.has_execution_id()) {
    if (e.seq() <= sub.last_seq) return;  // already delivered before a resubscription
    sub.last_seq = e.seq();
  } else {
    sub.cursor = e.cursor();
  }
  sub.failures = 0;
  EmitEvent(key, EventToJson(e));
}

void ClientSession::OnStreamDone(const std::string& key, uint64_t gen, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = subs_.find(key);
  if (closed_ || it == subs_.end() || it->second.gen != gen) return;
  Sub& sub = it->second;
  sub.stream = nullptr;
  if (status.ok()) {
    EmitEnd(key, sub.last_seq);
    subs_.erase(it);
    return;
  }
  if (status.code() == absl::StatusCode::kOutOfRange && !sub.request.has_execution_id()) {
    // The feed's cursor fell out of its retained history: continue from now on.
    sub.cursor.clear();
    sub.retry_at = absl::Now();
    return;
  }
  if (Retryable(status.code()) && sub.failures < 30) {
    ++sub.failures;
    sub.retry_at =
        absl::Now() +
        std::min(absl::Milliseconds(100) * (1 << std::min(sub.failures, 6)), absl::Seconds(5));
    return;
  }
  EmitSubscriptionError(key, status);
  subs_.erase(it);
}

namespace {

std::string ErrorCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

// ---------------------------------------------------------------------------------------------
// Socket.IO v4 over Engine.IO 4 (WebSocket transport).
// ---------------------------------------------------------------------------------------------
class SocketIoSession final : public ClientSession {
 public:
  SocketIoSession(RealtimeHub::Impl& hub, std::shared_ptr<WsConnection> conn, HttpRequest upgrade)
      : ClientSession(hub, std::move(conn)), upgrade_(std::move(upgrade)), sid_(RandomId()) {
    const Json open = {
        {"sid", sid_},
        {"upgrades", Json::array()},
        {"pingInterval", absl::ToInt64Milliseconds(hub.options.ping_interval)},
        {"pingTimeout", absl::ToInt64Milliseconds(hub.options.ping_timeout)},
        {"maxPayload", hub.options.max_payload},
    };
    Send(absl::StrCat("0", open.dump()));
    last_ping_ = absl::Now();
  }

  void OnText(std::string text) override {
    if (text.empty()) return;
    switch (text[0]) {
      case '2':  // ping from an Engine.IO v3-style client: answer
        Send(absl::StrCat("3", text.substr(1)));
        return;
      case '3': {  // pong
        absl::MutexLock lock(&mu_);
        awaiting_pong_ = false;
        return;
      }
      case '1':  // close
        conn_->Close();
        return;
      case '4':
        return OnPacket(std::string_view(text).substr(1));
      default:
        return;  // 5 upgrade, 6 noop: nothing to do on a WebSocket-only transport
    }
  }

  void Tick(absl::Time now) override {
    bool close = false;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      if (awaiting_pong_ && now - last_ping_ > hub_.options.ping_timeout) close = true;
      if (!principal_ && now - created_ > hub_.options.connect_timeout) close = true;
      if (!close && !awaiting_pong_ && now - last_ping_ >= hub_.options.ping_interval) {
        awaiting_pong_ = true;
        last_ping_ = now;
        Send("2");
      }
    }
    if (close) {
      conn_->Close();
      return;
    }
    ClientSession::Tick(now);
  }

 protected:
  void EmitEvent(const std::string& key, const Json& event) override {
    Emit("execution-event", event);
  }
  void EmitSubscriptionError(const std::string& key, const absl::Status& status) override {
    Json j = {{"code", ErrorCodeName(status.code())},
              {"message", std::string(status.message())},
              {"timestamp", IsoNow()}};
    if (key.rfind("execution:", 0) == 0) j["executionId"] = key.substr(10);
    if (key.rfind("workflow:", 0) == 0) j["workflowId"] = key.substr(9);
    Emit("subscription-error", j);
  }

 private:
  void Emit(const std::string& name, const Json& data) {
    Json packet = Json::array();
    packet.push_back(name);
    packet.push_back(data);
    Send(absl::StrCat("42", packet.dump(-1, ' ', false, Json::error_handler_t::replace)));
  }
  void Ack(const std::optional<int64_t>& id, const Json& data) {
    if (!id) return;
    Json args = Json::array();
    args.push_back(data);
    Send(absl::StrCat("43", *id, args.dump(-1, ' ', false, Json::error_handler_t::replace)));
  }
  static Json Failure(const absl::Status& s) {
    return {
        {"success", false}, {"error", std::string(s.message())}, {"code", ErrorCodeName(s.code())}};
  }

  // One Socket.IO packet (socketio_packet.h).
  void OnPacket(std::string_view text) {
    std::optional<SocketIoPacket> packet = ParseSocketIoPacket(text);
    if (!packet) return;
    if (packet->type == '5' || packet->type == '6') {
      Send(R"(44{"message":"binary packets are not supported"})");
      return;
    }
    if (!packet->error.ok()) return Ack(packet->ack_id, Failure(packet->error));
    if (packet->nsp != "/") {
      Send(absl::StrCat("44", packet->nsp, ",", R"({"message":"Invalid namespace"})"));
      return;
    }
    const Json& payload = packet->payload;
    const std::optional<int64_t>& ack_id = packet->ack_id;
    switch (packet->type) {
      case '0':
        return OnConnect(payload);
      case '1':
        OnClose();  // the namespace is left; the engine connection stays
        {
          absl::MutexLock lock(&mu_);
          closed_ = false;
          principal_.reset();
        }
        return;
      case '2':
        if (!payload.is_array() || payload.empty() || !payload[0].is_string()) return;
        return OnEvent(payload[0].get<std::string>(), payload, ack_id);
      default:
        return;  // 3 ACK from the client: the server asks none
    }
  }

  void OnConnect(const Json& auth) {
    std::string token;
    if (auth.is_object() && auth.contains("token") && auth["token"].is_string()) {
      token = auth["token"].get<std::string>();
    } else {
      token = BearerToken(upgrade_.headers, upgrade_.query);
    }
    std::string workspace;
    if (auth.is_object() && auth.contains("workspaceId") && auth["workspaceId"].is_string()) {
      workspace = auth["workspaceId"].get<std::string>();
    } else if (auto it = upgrade_.headers.find("x-workspace-id"); it != upgrade_.headers.end()) {
      workspace = it->second;
    }
    absl::StatusOr<Principal> p = hub_.auth.Authenticate(token, workspace);
    if (!p.ok()) {
      Send(absl::StrCat("44", Json{{"message", std::string(p.status().message())}}.dump()));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      principal_ = *p;
    }
    Send(absl::StrCat("40", Json{{"sid", RandomId()}}.dump()));
    Emit("connected", {{"message", "Connected to execution updates"},
                       {"userId", p->user_id},
                       {"timestamp", IsoNow()}});
  }

  void OnEvent(const std::string& name, const Json& args, const std::optional<int64_t>& ack_id) {
    std::optional<Principal> principal;
    {
      absl::MutexLock lock(&mu_);
      principal = principal_;
    }
    if (!principal) return;  // events before CONNECT are ignored, as Socket.IO does
    const Json arg = args.size() > 1 ? args[1] : Json(nullptr);
    if (name == "subscribe-execution" || name == "unsubscribe-execution") {
      std::string id;
      int64_t after_seq = 0;
      if (arg.is_string()) {
        id = arg.get<std::string>();
      } else if (arg.is_object()) {
        if (arg.contains("executionId") && arg["executionId"].is_string()) {
          id = arg["executionId"].get<std::string>();
        }
        if (arg.contains("afterSeq") && arg["afterSeq"].is_number_integer()) {
          after_seq = arg["afterSeq"].get<int64_t>();
        }
      }
      if (name == "unsubscribe-execution") {
        RemoveSubscription(absl::StrCat("execution:", id));
        Ack(ack_id, {{"success", true}, {"executionId", id}});
        Emit("execution-unsubscribed", {{"executionId", id}, {"timestamp", IsoNow()}});
        return;
      }
      if (absl::Status s = CheckExecution(id); !s.ok()) {
        Ack(ack_id, Failure(s));
        if (!ack_id) EmitSubscriptionError(absl::StrCat("execution:", id), s);
        return;
      }
      Ack(ack_id, {{"success", true}, {"executionId", id}});
      Emit("execution-subscribed", {{"executionId", id}, {"timestamp", IsoNow()}});
      v1::SubscribeRequest req;
      req.set_execution_id(id);
      AddSubscription(absl::StrCat("execution:", id), std::move(req), after_seq);
      return;
    }
    if (name == "subscribe-workflow" || name == "unsubscribe-workflow") {
      std::string id = arg.is_string() ? arg.get<std::string>() : "";
      if (arg.is_object() && arg.contains("workflowId") && arg["workflowId"].is_string()) {
        id = arg["workflowId"].get<std::string>();
      }
      if (id.empty()) {
        Ack(ack_id, Failure(absl::InvalidArgumentError("workflowId is required")));
        return;
      }
      if (name == "unsubscribe-workflow") {
        RemoveSubscription(absl::StrCat("workflow:", id));
        Ack(ack_id, {{"success", true}, {"workflowId", id}});
        Emit("workflow-unsubscribed", {{"workflowId", id}, {"timestamp", IsoNow()}});
        return;
      }
      Ack(ack_id, {{"success", true}, {"workflowId", id}});
      Emit("workflow-subscribed", {{"workflowId", id}, {"timestamp", IsoNow()}});
      v1::SubscribeRequest req;
      req.set_workflow_id(id);
      AddSubscription(absl::StrCat("workflow:", id), std::move(req), 0);
      return;
    }
    if (name == "start-workflow-execution") {
      absl::StatusOr<Json> started = hub_.start(*principal, arg);
      if (!started.ok()) {
        Ack(ack_id, Failure(started.status()));
        return;
      }
      Json ack = {{"success", true},
                  {"executionId", (*started)["executionId"]},
                  {"message", "Workflow execution started"}};
      Ack(ack_id, ack);
      return;
    }
    Ack(ack_id, Failure(absl::InvalidArgumentError(absl::StrCat("unknown event \"", name, "\""))));
  }

  const HttpRequest upgrade_;
  const std::string sid_;
  absl::Time last_ping_ ABSL_GUARDED_BY(mu_);
  bool awaiting_pong_ ABSL_GUARDED_BY(mu_) = false;
};

// ---------------------------------------------------------------------------------------------
// Plain WebSocket (/ws): JSON frames.
// ---------------------------------------------------------------------------------------------
class PlainSession final : public ClientSession {
 public:
  PlainSession(RealtimeHub::Impl& hub, std::shared_ptr<WsConnection> conn, Principal principal)
      : ClientSession(hub, std::move(conn)) {
    {
      absl::MutexLock lock(&mu_);
      principal_ = principal;
    }
    SendJson({{"type", "welcome"},
              {"protocol", "ndx-ws-1"},
              {"userId", principal.user_id},
              {"workspaceId", principal.workspace_id}});
  }

  void OnText(std::string text) override {
    if (absl::Status s = common::CheckJsonDepth(text, "frame"); !s.ok()) {
      return SendJson(
          {{"type", "error"}, {"code", "INVALID_ARGUMENT"}, {"message", std::string(s.message())}});
    }
    const Json m = Json::parse(text, nullptr, false);
    if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) {
      return SendJson({{"type", "error"},
                       {"code", "INVALID_ARGUMENT"},
                       {"message", "frames are JSON objects with a string \"type\""}});
    }
    const std::string type = m["type"].get<std::string>();
    const Json id = m.contains("id") ? m["id"] : Json(nullptr);
    auto reply = [&](Json j) {
      if (!id.is_null()) j["id"] = id;
      SendJson(j);
    };
    auto error = [&](const absl::Status& s, Json extra) {
      extra["type"] = "error";
      extra["code"] = ErrorCodeName(s.code());
      extra["message"] = std::string(s.message());
      reply(std::move(extra));
    };
    const std::string execution_id = m.contains("executionId") && m["executionId"].is_string()
                                         ? m["executionId"].get<std::string>()
                                         : "";
    const std::string workflow_id = m.contains("workflowId") && m["workflowId"].is_string()
                                        ? m["workflowId"].get<std::string>()
                                        : "";
    if (type == "ping") return reply({{"type", "pong"}});
    if (type == "subscribe") {
      int64_t after_seq = 0;
      if (m.contains("afterSeq")) {
        if (!m["afterSeq"].is_number_integer() || m["afterSeq"].get<int64_t>() < 0) {
          return error(absl::InvalidArgumentError("afterSeq: must be an integer >= 0"),
                       {{"executionId", execution_id}});
        }
        after_seq = m["afterSeq"].get<int64_t>();
      }
      if (absl::Status s = CheckExecution(execution_id); !s.ok()) {
        return error(s, {{"executionId", execution_id}});
      }
      reply({{"type", "subscribed"}, {"executionId", execution_id}, {"afterSeq", after_seq}});
      v1::SubscribeRequest req;
      req.set_execution_id(execution_id);
      AddSubscription(absl::StrCat("execution:", execution_id), std::move(req), after_seq);
      return;
    }
    if (type == "unsubscribe") {
      RemoveSubscription(absl::StrCat("execution:", execution_id));
      return reply({{"type", "unsubscribed"}, {"executionId", execution_id}});
    }
    if (type == "subscribe-workflow" || type == "unsubscribe-workflow") {
      if (workflow_id.empty()) {
        return error(absl::InvalidArgumentError("workflowId: required"), Json::object());
      }
      const std::string key = absl::StrCat("workflow:", workflow_id);
      if (type == "unsubscribe-workflow") {
        RemoveSubscription(key);
        return reply({{"type", "unsubscribed"}, {"workflowId", workflow_id}});
      }
      reply({{"type", "subscribed"}, {"workflowId", workflow_id}});
      v1::SubscribeRequest req;
      req.set_workflow_id(workflow_id);
      AddSubscription(key, std::move(req), 0);
      return;
    }
    if (type == "subscribe-all") {
      reply({{"type", "subscribed"}, {"all", true}});
      v1::SubscribeRequest req;
      req.mutable_all();
      AddSubscription("all", std::move(req), 0);
      return;
    }
    if (type == "unsubscribe-all") {
      RemoveSubscription("all");
      return reply({{"type", "unsubscribed"}, {"all", true}});
    }
    error(absl::InvalidArgumentError(absl::StrCat("type: unknown frame type \"", type, "\"")),
          Json::object());
  }

 protected:
  void EmitEvent(const std::string& key, const Json& event) override {
    SendJson({{"type", "event"}, {"event", event}});
  }
  void EmitEnd(const std::string& key, int64_t last_seq) override {
    if (key.rfind("execution:", 0) != 0) return;
    SendJson({{"type", "end"}, {"executionId", key.substr(10)}, {"lastSeq", last_seq}});
  }
  void EmitSubscriptionError(const std::string& key, const absl::Status& status) override {
    Json j = {{"type", "error"},
              {"code", ErrorCodeName(status.code())},
              {"message", std::string(status.message())}};
    if (key.rfind("execution:", 0) == 0) j["executionId"] = key.substr(10);
    if (key.rfind("workflow:", 0) == 0) j["workflowId"] = key.substr(9);
    SendJson(j);
  }

 private:
  void SendJson(const Json& j) { Send(j.dump(-1, ' ', false, Json::error_handler_t::replace)); }
};

}  // namespace

RealtimeHub::RealtimeHub(QueueClient& client, const Authenticator& auth, StartFn start,
                         Options options)
    : impl_(std::make_shared<Impl>(client, auth, std::move(start), options)) {
  impl_->ticker = std::thread([impl = impl_.get()] { impl->TickerLoop(); });
}

RealtimeHub::~RealtimeHub() { Shutdown(); }

void RealtimeHub::Shutdown() {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->stop.Notify();
  if (impl_->ticker.joinable()) impl_->ticker.join();
  std::vector<std::shared_ptr<ClientSession>> live;
  {
    absl::MutexLock lock(&impl_->mu);
    for (auto& w : impl_->sessions) {
      if (auto s = w.lock()) live.push_back(s);
    }
    impl_->sessions.clear();
  }
  for (auto& s : live) s->OnClose();  // cancels the gRPC streams
}

WsAccept RealtimeHub::AcceptSocketIo(const HttpRequest& request,
                                     std::shared_ptr<WsConnection> conn) {
  WsAccept accept;
  if (QueryParam(request.query, "EIO") != "4") {
    accept.refusal = {400, "application/json",
                      R"({"code":5,"message":"Unsupported protocol version"})"};
    return accept;
  }
  auto session = std::make_shared<SocketIoSession>(*impl_, std::move(conn), request);
  impl_->Register(session);
  accept.listener = session;
  return accept;
}

WsAccept RealtimeHub::AcceptPlain(const HttpRequest& request, std::shared_ptr<WsConnection> conn) {
  WsAccept accept;
  std::string workspace = QueryParam(request.query, "workspaceId");
  if (auto it = request.headers.find("x-workspace-id"); it != request.headers.end()) {
    workspace = it->second;
  }
  absl::StatusOr<Principal> p =
      impl_->auth.Authenticate(BearerToken(request.headers, request.query), workspace);
  if (!p.ok()) {
    const int status = p.status().code() == absl::StatusCode::kUnauthenticated ? 401 : 503;
    accept.refusal = {status, "application/json",
                      Json{{"success", false},
                           {"error",
                            {{"code", status == 401 ? "UNAUTHORIZED" : "UNAVAILABLE"},
                             {"message", std::string(p.status().message())}}}}
                          .dump()};
    return accept;
  }
  auto session = std::make_shared<PlainSession>(*impl_, std::move(conn), *p);
  impl_->Register(session);
  accept.listener = session;
  return accept;
}

HttpResponse RealtimeHub::SocketIoHttp(const HttpRequest& request) {
  // Engine.IO's answer to a transport it does not serve; clients that allow "websocket" then
  // use it (socket.io-client tries the transports in the order given).
  return {400, "application/json", R"({"code":0,"message":"Transport unknown"})"};
}

int RealtimeHub::connected_clients() const { return impl_->connected.load(); }

}  // namespace ndx::gateway
