#include "services/gateway/gateway.h"

#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/grpc_status.h"
#include "libs/common/json_depth.h"
#include "libs/common/log.h"
#include "libs/common/metrics.h"
#include "services/gateway/api_json.h"
#include "services/gateway/auth.h"
#include "services/gateway/dashboard.h"
#include "services/gateway/queue_client.h"
#include "services/gateway/realtime.h"

namespace ndx::gateway {

struct Gateway::Context {
  const HttpRequest& request;
  const Principal& principal;
  std::vector<std::string> params;  // the :id parts of the path, in order
};

namespace {

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpResponse Ok(const Json& data, int status = 200) {
  return JsonResponse(status, {{"success", true}, {"data", data}});
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return JsonResponse(status,
                      {{"success", false}, {"error", {{"code", code}, {"message", message}}}});
}

// A gRPC failure as NodeDrop's error envelope: the HTTP status from the one table
// (common::HttpStatusForCode), the code's name as error.code (EXECUTION_NOT_FOUND for NOT_FOUND on
// execution routes, as NodeDrop says).
HttpResponse StatusResponse(const absl::Status& s, bool execution_route = true) {
  std::string code = absl::StatusCodeToString(s.code());
  absl::AsciiStrToUpper(&code);
  for (char& ch : code) {
    if (ch == ' ') ch = '_';
  }
  if (s.code() == absl::StatusCode::kNotFound && execution_route) code = "EXECUTION_NOT_FOUND";
  if (s.code() == absl::StatusCode::kUnauthenticated) code = "UNAUTHORIZED";
  return ErrorResponse(common::HttpStatusForCode(s.code()), code, std::string(s.message()));
}

// Ids in paths: NodeDrop's cuid or UUID, or any id ndx generates (letters, digits, '-', '_').
bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

absl::StatusOr<Json> ParseBody(const HttpRequest& r) {
  if (r.body.empty()) return Json::object();
  // Before parsing: a value nested 500,000 deep parses fine but overflows the stack when dumped.
  if (absl::Status s = common::CheckJsonDepth(r.body, "request body"); !s.ok()) return s;
  Json j;
  try {
    j = Json::parse(r.body);
  } catch (const Json::exception& e) {
    // Where parsing failed, for a message a person can act on.
    const auto* parse_error = dynamic_cast<const Json::parse_error*>(&e);
    return absl::InvalidArgumentError(absl::StrCat(
        "request body is not valid JSON",
        parse_error != nullptr ? absl::StrCat(" (at byte ", parse_error->byte, ")") : ""));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("request body: must be a JSON object");
  return j;
}

// Query integer with a range; `name` is in the error message.
absl::StatusOr<int64_t> QueryInt(const HttpRequest& r, const std::string& name, int64_t def,
                                 int64_t min, int64_t max) {
  const std::string v = QueryParam(r.query, name);
  if (v.empty()) return def;
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": \"", v, "\" is not an integer in ", min, "..", max));
  }
  return n;
}

absl::StatusOr<google::protobuf::Timestamp> QueryTime(const HttpRequest& r, const std::string& name,
                                                      bool* present) {
  const std::string v = QueryParam(r.query, name);
  google::protobuf::Timestamp t;
  *present = !v.empty();
  if (v.empty()) return t;
  if (!google::protobuf::util::TimeUtil::FromString(v, &t)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": \"", v, "\" is not an ISO 8601 time (2026-01-31T12:00:00Z)"));
  }
  return t;
}

Json ProgressJson(const v1::Execution& e) {
  int completed = 0, failed = 0, total = 0;
  for (const v1::NodeExecution& n : e.node_executions()) {
    ++total;
    if (n.state() == v1::NODE_STATE_COMPLETED || n.state() == v1::NODE_STATE_SKIPPED) ++completed;
    if (n.state() == v1::NODE_STATE_FAILED) ++failed;
  }
  const bool done = IsTerminal(e.state());
  const int progress =
      done ? 100 : (total == 0 ? 0 : static_cast<int>(std::floor(100.0 * completed / total)));
  return {{"executionId", e.id()},
          {"status", RestStatus(e.state())},
          {"state", StateName(e.state())},
          {"progress", progress},
          {"totalNodes", total},
          {"completedNodes", completed},
          {"failedNodes", failed},
          {"currentNode", e.current_node_id().empty() ? Json(nullptr) : Json(e.current_node_id())},
          {"startedAt", IsoTime(e.created_at())},
          {"finishedAt", IsoTime(e.finished_at())}};
}

}  // namespace

namespace {

constexpr double kMaxTimeoutMs = 365.0 * 24 * 3600 * 1000;

// The Idempotency-Key header becomes the request's request_id, a proto string (UTF-8 only: gRPC
// would refuse to send anything else, and the caller would read a server error). Keys are opaque
// printable ASCII, as everyone's idempotency keys are; anything else is refused naming the header.
// The length limit is the queue's (request_id: 128 characters).
absl::Status CopyIdempotencyKey(const HttpRequest& request, std::string* request_id) {
  auto it = request.headers.find("idempotency-key");
  if (it == request.headers.end()) return absl::OkStatus();
  for (const char ch : it->second) {
    if (ch < 0x20 || ch > 0x7e) {
      return absl::InvalidArgumentError("Idempotency-Key: must be printable ASCII");
    }
  }
  *request_id = it->second;
  return absl::OkStatus();
}

// An integer JSON number in [min, max] (checked before any narrowing: 4294967301 is not 5).
bool IntegerIn(const Json& v, int64_t min, int64_t max) {
  if (v.is_number_unsigned()) {  // what JSON text's non-negative integers parse as
    return (min <= 0 || v.get<uint64_t>() >= static_cast<uint64_t>(min)) &&
           v.get<uint64_t>() <= static_cast<uint64_t>(max);
  }
  return v.is_number_integer() && v.get<int64_t>() >= min && v.get<int64_t>() <= max;
}

// Builds an ExecuteWorkflowRequest from NodeDrop's start payload (REST body or the Socket.IO
// start-workflow-execution payload). INVALID_ARGUMENT naming the field.
absl::Status BuildExecuteRequest(const Json& body, const std::string& path_workflow_id,
                                 v1::ExecuteWorkflowRequest* req) {
  auto str = [&](const char* key, std::string* out) -> absl::Status {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_string())
      return absl::InvalidArgumentError(absl::StrCat(key, ": must be a string"));
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  if (!body.is_object()) return absl::InvalidArgumentError("payload: must be a JSON object");
  std::string workflow_id = path_workflow_id, trigger, node_id, mode;
  if (path_workflow_id.empty()) {
    if (absl::Status s = str("workflowId", &workflow_id); !s.ok()) return s;
  }
  if (absl::Status s = str("triggerNodeId", &trigger); !s.ok()) return s;
  if (absl::Status s = str("nodeId", &node_id); !s.ok()) return s;
  if (absl::Status s = str("mode", &mode); !s.ok()) return s;
  if (!mode.empty() && mode != "single" && mode != "workflow") {
    return absl::InvalidArgumentError("mode: must be \"single\" or \"workflow\"");
  }
  auto wd = body.find("workflowData");
  const bool has_workflow = wd != body.end() && !wd->is_null();
  if (workflow_id.empty() && !has_workflow) {
    return absl::InvalidArgumentError("workflowId: required (or workflowData)");
  }
  if (has_workflow) {
    if (absl::Status s = WorkflowFromJson(*wd, "workflowData", req->mutable_workflow()); !s.ok()) {
      return s;
    }
    if (!workflow_id.empty()) req->mutable_workflow()->set_id(workflow_id);
  } else {
    req->set_workflow_id(workflow_id);
  }
  if (mode == "single") {
    if (node_id.empty()) return absl::InvalidArgumentError("nodeId: required when mode is single");
    req->set_single_node_mode(true);
    req->set_trigger_node_id(node_id);
    if (auto in = body.find("inputData"); in != body.end() && !in->is_null()) {
      req->set_trigger_data_json(in->dump());
    }
  } else {
    req->set_trigger_node_id(trigger);
  }
  if (auto td = body.find("triggerData"); td != body.end() && !td->is_null()) {
    req->set_trigger_data_json(td->dump());
  }
  if (auto o = body.find("options"); o != body.end() && !o->is_null()) {
    if (!o->is_object()) return absl::InvalidArgumentError("options: must be an object");
    auto get = [&](const char* key) -> const Json* {
      auto it = o->find(key);
      return it == o->end() || it->is_null() ? nullptr : &*it;
    };
    if (const Json* v = get("useQueue")) {
      if (!v->is_boolean())
        return absl::InvalidArgumentError("options.useQueue: must be a boolean");
      req->set_use_queue(v->get<bool>());
    }
    if (const Json* v = get("priority")) {
      if (!IntegerIn(*v, -1000, 1000)) {
        return absl::InvalidArgumentError("options.priority: must be an integer in -1000..1000");
      }
      req->set_priority(v->get<int32_t>());
    }
    if (const Json* v = get("timeout")) {
      // Bounded before the conversion: a double beyond int64 (1e300) is undefined behaviour, and
      // beyond protobuf's Duration range a CHECK failure.
      if (!v->is_number() || v->get<double>() <= 0 || v->get<double>() > kMaxTimeoutMs) {
        return absl::InvalidArgumentError(
            absl::StrCat("options.timeout: must be a positive number of milliseconds, at most ",
                         static_cast<int64_t>(kMaxTimeoutMs), " (a year)"));
      }
      *req->mutable_timeout() = google::protobuf::util::TimeUtil::MillisecondsToDuration(
          static_cast<int64_t>(v->get<double>()));
    }
    if (const Json* v = get("maxAttempts")) {
      if (!IntegerIn(*v, 1, 100)) {
        return absl::InvalidArgumentError("options.maxAttempts: must be an integer in 1..100");
      }
      req->set_max_attempts(v->get<int32_t>());
    }
    if (const Json* v = get("requestId")) {
      if (!v->is_string()) return absl::InvalidArgumentError("options.requestId: must be a string");
      req->set_request_id(v->get<std::string>());
    }
    if (const Json* v = get("queue")) {
      if (!v->is_string()) return absl::InvalidArgumentError("options.queue: must be a string");
      req->set_queue(v->get<std::string>());
    }
  }
  return absl::OkStatus();
}

}  // namespace

Gateway::Gateway(config::GatewayConfig config)
    : Gateway(config,
              grpc::CreateChannel(config.queue_server, grpc::InsecureChannelCredentials())) {}

Gateway::Gateway(config::GatewayConfig config, std::shared_ptr<grpc::Channel> queue_channel)
    : config_(std::move(config)),
      registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("ndx_gateway_http_requests_total")
                    .Help("HTTP requests answered, by route and status class")
                    .Register(*registry_)),
      started_(prometheus::BuildCounter()
                   .Name("ndx_gateway_executions_started_total")
                   .Help("Executions started through the gateway, by interface and result")
                   .Register(*registry_)) {
  common::RegisterProcessMetrics(*registry_, "ndx-gateway");
  queue_channel_ = std::move(queue_channel);
  client_ = std::make_unique<QueueClient>(queue_channel_, config_.rpc_timeout);
  std::unique_ptr<pg::PgPool> sessions;
  if (!config_.auth_disabled && !config_.database_url.empty()) {
    absl::StatusOr<std::unique_ptr<pg::PgPool>> pool =
        pg::PgPool::Create({.conninfo = config_.database_url, .size = 4});
    if (pool.ok()) {
      sessions = std::move(*pool);
    } else {
      init_status_ = pool.status();
    }
  }
  auth_ = std::make_unique<Authenticator>(
      Authenticator::Options{config_.auth_disabled, config_.jwt_secret}, std::move(sessions));
  limiter_ = std::make_unique<RateLimiter>(config_.executions_per_minute, config_.executions_burst);
  hub_ = std::make_unique<RealtimeHub>(
      *client_, *auth_,
      [this](const Principal& p, const Json& payload) -> absl::StatusOr<Json> {
        const absl::Duration wait = limiter_->Acquire(p.user_id, absl::Now());
        if (wait > absl::ZeroDuration()) {
          started_.Add({{"via", "socket.io"}, {"result", "rate_limited"}}).Increment();
          return absl::ResourceExhaustedError(absl::StrCat("too many executions started; retry in ",
                                                           std::ceil(absl::ToDoubleSeconds(wait)),
                                                           " s"));
        }
        v1::ExecuteWorkflowRequest req;
        if (absl::Status s = BuildExecuteRequest(payload, "", &req); !s.ok()) return s;
        req.set_workspace_id(p.workspace_id);
        req.set_user_id(p.user_id);
        v1::ExecuteWorkflowResponse resp;
        absl::Status s = client_->Execute(req, &resp);
        started_.Add({{"via", "socket.io"}, {"result", s.ok() ? "ok" : "error"}}).Increment();
        if (!s.ok()) return s;
        return Json{{"executionId", resp.execution_id()}};
      },
      RealtimeHub::Options{});
}

Gateway::~Gateway() { Shutdown(); }

absl::StatusOr<int> Gateway::Start() {
  if (!init_status_.ok()) return init_status_;
  HttpServer::Options options;
  options.max_body_bytes = static_cast<size_t>(config_.max_body_bytes);
  options.ws_handler = [this](const HttpRequest& r, std::shared_ptr<WsConnection> conn) {
    if (r.path == "/socket.io/" || r.path == "/socket.io") {
      return hub_->AcceptSocketIo(r, std::move(conn));
    }
    if (r.path == "/ws") return hub_->AcceptPlain(r, std::move(conn));
    WsAccept refuse;
    refuse.refusal = ErrorResponse(404, "NOT_FOUND", absl::StrCat("no WebSocket at ", r.path));
    return refuse;
  };
  http_ = std::make_unique<HttpServer>([this](const HttpRequest& r) { return Handle(r); },
                                       std::move(options));
  return http_->Start(config_.http_address, config_.http_threads);
}

void Gateway::Shutdown() {
  if (hub_ != nullptr) hub_->Shutdown();
  if (http_ != nullptr) http_->Shutdown();
}

struct Gateway::Route {
  const char* method;
  const char* pattern;  // "/api/executions/:id/cancel"
  const char* name;     // metrics label
  HttpResponse (Gateway::*handler)(const Context&);
};

HttpResponse Gateway::Handle(const HttpRequest& request) {
  std::string route = "other";
  HttpResponse response = Route(request, route);
  // CORS for the NodeDrop frontend (FRONTEND_URL).
  if (auto it = request.headers.find("origin"); it != request.headers.end()) {
    if (config_.frontend_url == "*" || it->second == config_.frontend_url) {
      response.headers.emplace_back("Access-Control-Allow-Origin", it->second);
      response.headers.emplace_back("Access-Control-Allow-Credentials", "true");
      response.headers.emplace_back("Vary", "Origin");
    }
  }
  requests_.Add({{"route", route}, {"status", absl::StrCat(response.status / 100, "xx")}})
      .Increment();
  return response;
}

HttpResponse Gateway::Route(const HttpRequest& request, std::string& route_name) {
  static const struct Route kRoutes[] = {
      {"POST", "/api/executions", "create", &Gateway::CreateExecution},
      {"GET", "/api/executions", "list", &Gateway::ListExecutions},
      {"GET", "/api/executions/stats", "stats", &Gateway::Stats},
      {"GET", "/api/executions/queue/stats", "queue_stats", &Gateway::QueueStats},
      {"GET", "/api/executions/queue/failed", "failed", &Gateway::FailedJobs},
      {"GET", "/api/executions/queue/workers", "workers", &Gateway::Workers},
      {"POST", "/api/executions/queue/failed/:id/retry", "failed_retry", &Gateway::RetryFailedJob},
      {"GET", "/api/executions/realtime/info", "realtime_info", &Gateway::RealtimeInfo},
      {"GET", "/api/executions/:id", "get", &Gateway::GetExecution},
      {"GET", "/api/executions/:id/progress", "progress", &Gateway::Progress},
      {"POST", "/api/executions/:id/cancel", "cancel", &Gateway::Cancel},
      {"POST", "/api/executions/:id/retry", "retry", &Gateway::Retry},
      {"DELETE", "/api/executions/:id", "delete", &Gateway::Delete},
      {"POST", "/api/workflows/:id/execute", "execute_workflow", &Gateway::ExecuteWorkflowById},
  };
  if (request.method == "OPTIONS") {
    route_name = "preflight";
    HttpResponse r{204, "text/plain", "", {}};
    r.headers = {{"Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"},
                 {"Access-Control-Allow-Headers",
                  "Authorization, Content-Type, X-Workspace-Id, Idempotency-Key"},
                 {"Access-Control-Max-Age", "600"}};
    return r;
  }
  if (request.method == "GET" && (request.path == "/health" || request.path == "/api/health")) {
    route_name = "health";
    return Health();
  }
  if (request.method == "GET" && request.path == "/metrics") {
    route_name = "metrics";
    return {200, "text/plain; version=0.0.4", common::SerializeMetrics(*registry_), {}};
  }
  if (request.method == "GET" && (request.path == "/" || request.path == "/dashboard")) {
    route_name = "dashboard";
    return {200,
            "text/html; charset=utf-8",
            std::string(DashboardHtml()),
            {{"Cache-Control", "no-cache"}}};
  }
  if (request.path == "/socket.io/" || request.path == "/socket.io") {
    route_name = "socket.io";
    return hub_->SocketIoHttp(request);
  }
  if (request.path == "/ws") {
    route_name = "ws";
    return ErrorResponse(426, "UPGRADE_REQUIRED", "/ws is a WebSocket endpoint");
  }
  const std::vector<std::string> parts = absl::StrSplit(request.path, '/');
  bool path_matched = false;
  for (const struct Route& r : kRoutes) {
    const std::vector<std::string> pattern = absl::StrSplit(r.pattern, '/');
    if (pattern.size() != parts.size()) continue;
    std::vector<std::string> params;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (pattern[i] == ":id") {
        // A literal of another route wins (/api/executions/stats is not an id).
        params.emplace_back(parts[i]);
      } else {
        match = pattern[i] == parts[i];
      }
    }
    if (!match) continue;
    path_matched = true;
    if (request.method != r.method) continue;
    route_name = r.name;
    for (const std::string& id : params) {
      if (!ValidId(id)) {
        return ErrorResponse(400, "INVALID_ID",
                             absl::StrCat("id: \"", id,
                                          "\" is not a valid id (letters, digits, '-', "
                                          "'_', at most 128)"));
      }
    }
    std::string workspace;
    if (auto it = request.headers.find("x-workspace-id"); it != request.headers.end()) {
      workspace = it->second;
    }
    absl::StatusOr<Principal> principal =
        auth_->Authenticate(BearerToken(request.headers, ""), workspace);
    if (!principal.ok()) return StatusResponse(principal.status(), false);
    return (this->*r.handler)(Context{request, *principal, std::move(params)});
  }
  if (path_matched) {
    route_name = "method_not_allowed";
    return ErrorResponse(405, "METHOD_NOT_ALLOWED",
                         absl::StrCat(request.method, " is not allowed on ", request.path));
  }
  return ErrorResponse(404, "NOT_FOUND",
                       absl::StrCat("route not found: ", request.method, " ", request.path));
}

HttpResponse Gateway::Health() {
  v1::GetQueueStatsRequest req;
  v1::GetQueueStatsResponse resp;
  // A short deadline: health must answer even when the queue service hangs.
  QueueClient quick(queue_channel_, absl::Seconds(1));
  const absl::Status s = quick.Stats(req, &resp);
  Json stats = {{"waiting", 0}, {"active", 0}, {"completed", 0}, {"failed", 0}, {"delayed", 0}};
  for (const v1::QueueStats& q : resp.queues()) {
    stats["waiting"] = stats["waiting"].get<int64_t>() + q.waiting();
    stats["active"] = stats["active"].get<int64_t>() + q.active();
    stats["completed"] = stats["completed"].get<int64_t>() + q.completed();
    stats["failed"] = stats["failed"].get<int64_t>() + q.failed();
    stats["delayed"] = stats["delayed"].get<int64_t>() + q.delayed();
  }
  Json queue = {{"status", s.ok() ? "ok" : "error"}, {"server", config_.queue_server}};
  if (s.ok()) {
    queue["stats"] = stats;
  } else {
    queue["error"] = std::string(s.message());
  }
  Json body = {
      {"status", s.ok() ? "ok" : "degraded"},
      {"timestamp", IsoNow()},
      {"service", "ndx-gateway"},
      {"version", common::NdxVersion()},
      {"websocket", {{"connected_users", hub_->connected_clients()}}},
      {"queue", queue},
      {"auth", config_.auth_disabled ? "none" : "token"},
  };
  // 200 while the gateway itself serves; the body says whether its dependencies do.
  return JsonResponse(200, body);
}

HttpResponse Gateway::Start(const Context& c, const std::string& workflow_id) {
  const char* via = workflow_id.empty() ? "rest" : "rest_workflow";
  absl::StatusOr<Json> body = ParseBody(c.request);
  if (!body.ok()) return StatusResponse(body.status(), false);
  v1::ExecuteWorkflowRequest req;
  if (absl::Status s = BuildExecuteRequest(*body, workflow_id, &req); !s.ok()) {
    return StatusResponse(s, false);
  }
  if (absl::Status s = CopyIdempotencyKey(c.request, req.mutable_request_id()); !s.ok()) {
    return StatusResponse(s, false);
  }
  const absl::Duration wait = limiter_->Acquire(c.principal.user_id, absl::Now());
  if (wait > absl::ZeroDuration()) {
    started_.Add({{"via", via}, {"result", "rate_limited"}}).Increment();
    const int64_t secs = static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(wait)));
    HttpResponse r = ErrorResponse(
        429, "RATE_LIMITED",
        absl::StrCat("too many executions started; at most ", config_.executions_per_minute,
                     " a minute per user; retry in ", secs, " s"));
    r.headers.emplace_back("Retry-After", absl::StrCat(secs));
    return r;
  }
  req.set_workspace_id(c.principal.workspace_id);
  req.set_user_id(c.principal.user_id);
  v1::ExecuteWorkflowResponse resp;
  const absl::Status s = client_->Execute(req, &resp);
  started_.Add({{"via", via}, {"result", s.ok() ? "ok" : "error"}}).Increment();
  if (!s.ok()) return StatusResponse(s, false);
  return Ok({{"executionId", resp.execution_id()},
             {"status", "started"},
             {"state", StateName(resp.state())},
             {"mode", resp.mode() == v1::EXECUTION_MODE_DIRECT ? "direct" : "queue"},
             {"deduplicated", resp.deduplicated()}},
            201);
}

HttpResponse Gateway::CreateExecution(const Context& c) { return Start(c, ""); }

HttpResponse Gateway::ExecuteWorkflowById(const Context& c) { return Start(c, c.params[0]); }

HttpResponse Gateway::ListExecutions(const Context& c) {
  absl::StatusOr<int64_t> page = QueryInt(c.request, "page", 1, 1, 1000000);
  if (!page.ok()) return StatusResponse(page.status());
  absl::StatusOr<int64_t> limit = QueryInt(c.request, "limit", 50, 1, 100);
  if (!limit.ok()) return StatusResponse(limit.status());
  v1::ListExecutionsRequest req;
  req.set_workspace_id(c.principal.workspace_id);
  req.set_page_size(static_cast<int32_t>(*limit));
  req.set_skip(static_cast<int32_t>((*page - 1) * *limit));
  req.set_workflow_id(QueryParam(c.request.query, "workflowId"));
  if (const std::string status = QueryParam(c.request.query, "status"); !status.empty()) {
    auto states = StatesForRestStatus(status);
    if (!states) {
      return StatusResponse(absl::InvalidArgumentError(absl::StrCat(
          "status: \"", status, "\" is not one of RUNNING, SUCCESS, ERROR, CANCELLED, TIMEOUT")));
    }
    for (v1::ExecutionState st : *states) req.add_states(st);
  }
  bool present = false;
  absl::StatusOr<google::protobuf::Timestamp> after =
      QueryTime(c.request, "startedAfter", &present);
  if (!after.ok()) return StatusResponse(after.status());
  if (present) *req.mutable_created_after() = *after;
  absl::StatusOr<google::protobuf::Timestamp> before =
      QueryTime(c.request, "startedBefore", &present);
  if (!before.ok()) return StatusResponse(before.status());
  if (present) *req.mutable_created_before() = *before;
  v1::ListExecutionsResponse resp;
  if (absl::Status s = client_->List(req, &resp); !s.ok()) return StatusResponse(s);
  Json data = Json::array();
  for (const v1::Execution& e : resp.executions()) data.push_back(ExecutionToJson(e));
  const int64_t total = resp.total_size();
  return JsonResponse(200, {{"success", true},
                            {"data", data},
                            {"pagination",
                             {{"page", *page},
                              {"limit", *limit},
                              {"total", total},
                              {"totalPages", (total + *limit - 1) / *limit}}}});
}

HttpResponse Gateway::GetExecution(const Context& c) {
  v1::GetExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  req.set_view(v1::EXECUTION_VIEW_FULL);
  v1::Execution e;
  if (absl::Status s = client_->Get(req, &e); !s.ok()) return StatusResponse(s);
  return Ok(ExecutionToJson(e));
}

HttpResponse Gateway::Progress(const Context& c) {
  v1::GetExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  req.set_view(v1::EXECUTION_VIEW_BASIC);
  v1::Execution e;
  if (absl::Status s = client_->Get(req, &e); !s.ok()) return StatusResponse(s);
  return Ok(ProgressJson(e));
}

HttpResponse Gateway::Cancel(const Context& c) {
  v1::CancelExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  if (absl::StatusOr<Json> body = ParseBody(c.request); !body.ok()) {
    return StatusResponse(body.status(), false);
  } else if (auto it = body->find("reason"); it != body->end() && !it->is_null()) {
    if (!it->is_string()) {
      return StatusResponse(absl::InvalidArgumentError("reason: must be a string"), false);
    }
    req.set_reason(it->get<std::string>());
  }
  v1::Execution e;
  if (absl::Status s = client_->Cancel(req, &e); !s.ok()) return StatusResponse(s);
  return Ok({{"executionId", e.id()},
             {"status",
              e.state() == v1::EXECUTION_STATE_CANCELLING ? "CANCELLING" : RestStatus(e.state())},
             {"state", StateName(e.state())}});
}

HttpResponse Gateway::Retry(const Context& c) {
  v1::RetryExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  req.set_user_id(c.principal.user_id);
  if (absl::Status s = CopyIdempotencyKey(c.request, req.mutable_request_id()); !s.ok()) {
    return StatusResponse(s, false);
  }
  v1::Execution e;
  if (absl::Status s = client_->Retry(req, &e); !s.ok()) return StatusResponse(s);
  return Ok(ExecutionToJson(e), 201);
}

HttpResponse Gateway::Delete(const Context& c) {
  // NodeDrop deleted only the row (then answered 500); ndx deletes the row and the Redis state,
  // and refuses an execution that has not ended (409: cancel it first).
  v1::DeleteExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  v1::DeleteExecutionResponse resp;
  if (absl::Status s = client_->Delete(req, &resp); !s.ok()) return StatusResponse(s);
  return Ok({{"executionId", resp.execution_id()}, {"deleted", true}});
}

HttpResponse Gateway::Stats(const Context& c) {
  v1::GetQueueStatsResponse resp;
  if (absl::Status s = client_->Stats({}, &resp); !s.ok()) return StatusResponse(s, false);
  int64_t waiting = 0, active = 0, delayed = 0, completed = 0, failed = 0, cancelled = 0, timed = 0;
  for (const v1::QueueStats& q : resp.queues()) {
    waiting += q.waiting();
    active += q.active();
    delayed += q.delayed();
    completed += q.completed();
    failed += q.failed();
    cancelled += q.cancelled();
    timed += q.timed_out();
  }
  // Counts of the queues' retained executions (all workspaces), not all-time totals.
  return Ok(
      {{"totalExecutions", waiting + active + delayed + completed + failed + cancelled + timed},
       {"runningExecutions", waiting + active + delayed},
       {"completedExecutions", completed},
       {"failedExecutions", failed + timed},
       {"cancelledExecutions", cancelled},
       {"averageExecutionTime", nullptr},
       {"queueSize", waiting + delayed}});
}

HttpResponse Gateway::QueueStats(const Context& c) {
  v1::GetQueueStatsRequest req;
  req.set_queue(QueryParam(c.request.query, "queue"));
  v1::GetQueueStatsResponse resp;
  if (absl::Status s = client_->Stats(req, &resp); !s.ok()) return StatusResponse(s, false);
  Json sum = {{"waiting", 0}, {"active", 0},    {"completed", 0}, {"failed", 0},
              {"delayed", 0}, {"cancelled", 0}, {"timedOut", 0},  {"oldestWaitingAgeMs", 0}};
  Json queues = Json::array();
  for (const v1::QueueStats& q : resp.queues()) {
    Json j = QueueStatsToJson(q);
    for (const char* k :
         {"waiting", "active", "completed", "failed", "delayed", "cancelled", "timedOut"}) {
      sum[k] = sum[k].get<int64_t>() + j[k].get<int64_t>();
    }
    sum["oldestWaitingAgeMs"] =
        std::max(sum["oldestWaitingAgeMs"].get<int64_t>(), j["oldestWaitingAgeMs"].get<int64_t>());
    queues.push_back(std::move(j));
  }
  sum["queues"] = std::move(queues);
  return Ok(sum);
}

HttpResponse Gateway::Workers(const Context& c) {
  v1::ListWorkersRequest req;
  req.set_workspace_id(c.principal.workspace_id);
  v1::ListWorkersResponse resp;
  if (absl::Status s = client_->Workers(req, &resp); !s.ok()) return StatusResponse(s, false);
  Json workers = Json::array();
  int64_t total = 0, busy = 0;
  for (const v1::WorkerStatus& w : resp.workers()) {
    total += w.slots_total();
    busy += w.slots_busy();
    workers.push_back(WorkerToJson(w));
  }
  return Ok({{"workers", std::move(workers)}, {"slotsTotal", total}, {"slotsBusy", busy}});
}

HttpResponse Gateway::FailedJobs(const Context& c) {
  absl::StatusOr<int64_t> start = QueryInt(c.request, "start", 0, 0, 1000000);
  if (!start.ok()) return StatusResponse(start.status(), false);
  absl::StatusOr<int64_t> limit = QueryInt(c.request, "limit", 10, 1, 100);
  if (!limit.ok()) return StatusResponse(limit.status(), false);
  v1::ListExecutionsRequest req;
  req.set_workspace_id(c.principal.workspace_id);
  req.add_states(v1::EXECUTION_STATE_FAILED);
  req.add_states(v1::EXECUTION_STATE_TIMED_OUT);
  req.set_skip(static_cast<int32_t>(*start));
  req.set_page_size(static_cast<int32_t>(*limit));
  v1::ListExecutionsResponse resp;
  if (absl::Status s = client_->List(req, &resp); !s.ok()) return StatusResponse(s, false);
  Json jobs = Json::array();
  for (const v1::Execution& e : resp.executions()) {
    jobs.push_back({{"id", e.id()},
                    {"executionId", e.id()},
                    {"workflowId", e.workflow_id()},
                    {"failedReason", e.error().message()},
                    {"errorCode", e.error().code()},
                    {"attemptsMade", e.attempts()},
                    {"timestamp", IsoTime(e.finished_at())},
                    {"data",
                     {{"triggerNodeId", e.trigger_node_id()},
                      {"singleNodeMode", e.single_node_mode()},
                      {"failedNodeId", e.error().node_id()}}}});
  }
  return JsonResponse(
      200, {{"success", true},
            {"data", {{"jobs", jobs}, {"total", resp.total_size()}}},
            {"pagination", {{"start", *start}, {"limit", *limit}, {"total", resp.total_size()}}}});
}

HttpResponse Gateway::RetryFailedJob(const Context& c) {
  v1::RetryExecutionRequest req;
  req.set_execution_id(c.params[0]);
  req.set_workspace_id(c.principal.workspace_id);
  req.set_user_id(c.principal.user_id);
  v1::Execution e;
  if (absl::Status s = client_->Retry(req, &e); !s.ok()) return StatusResponse(s);
  return Ok({{"newExecutionId", e.id()}}, 201);
}

HttpResponse Gateway::RealtimeInfo(const Context& c) {
  std::string host = "localhost:4000";
  if (auto it = c.request.headers.find("host"); it != c.request.headers.end()) host = it->second;
  return Ok({{"websocketUrl", absl::StrCat("ws://", host, "/socket.io/")},
             {"plainWebsocketUrl", absl::StrCat("ws://", host, "/ws")},
             {"connectedUsers", hub_->connected_clients()},
             {"supportedEvents",
              {"started", "node-started", "node-completed", "node-failed", "node-skipped",
               "retrying", "completed", "failed", "cancelled"}},
             {"subscriptionEvents",
              {"subscribe-execution", "unsubscribe-execution", "subscribe-workflow",
               "unsubscribe-workflow", "start-workflow-execution"}}});
}

}  // namespace ndx::gateway
