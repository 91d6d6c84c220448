// Unit tests of the gateway without a queue service: JWT checks, the JSON mappings, the rate
// limiter, and routing through Gateway::Handle (no socket) for everything that is decided before
// a call to ndx-queue: auth, ids, JSON errors, CORS, 404/405.
#include "services/gateway/gateway.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/gateway/api_json.h"
#include "services/gateway/auth.h"
#include "services/gateway/http_server.h"
#include "services/gateway/socketio_packet.h"
#include "tests/testing/status_matchers.h"

namespace ndx::gateway {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kSecret = "0123456789abcdef0123456789abcdef";
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

std::string Token(const Json& claims, const std::string& secret = kSecret) {
  return SignJwtHs256(claims.dump(), secret);
}

TEST(Jwt, AcceptsAValidTokenAndTakesSubAndWorkspace) {
  absl::StatusOr<JwtClaims> c = VerifyJwtHs256(
      Token({{"sub", "u1"}, {"workspaceId", "w1"}, {"exp", 1800000100}}), kSecret, kNow);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->subject, "u1");
  EXPECT_EQ(c->workspace_id, "w1");
}

TEST(Jwt, RefusesBadSignatureAlgExpiryAndMissingClaims) {
  EXPECT_THAT(VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}}, std::string(32, 'x')),
                             kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
  EXPECT_THAT(VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"exp", 1799999000}}),
                             kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"nbf", 1800001000}}),
                             kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("nbf")));
  EXPECT_THAT(VerifyJwtHs256(Token({{"workspaceId", "w"}}), kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("sub")));
  EXPECT_THAT(VerifyJwtHs256(Token({{"sub", "u"}}), kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("workspaceId")));
  // alg "none" with the signature stripped.
  const std::string none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1Iiwid29ya3NwYWNlSWQiOiJ3In0.";
  EXPECT_THAT(VerifyJwtHs256(none, kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("HS256")));
  EXPECT_THAT(VerifyJwtHs256("a.b", kSecret, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not a JWT")));
}

// Found by tests/fuzz/jwt_fuzzer: a signed token whose exp or nbf is a huge number made
// VerifyJwtHs256 convert it to int64_t (undefined behaviour; UBSan aborts).
TEST(Jwt, HugeOrFractionalExpAndNbfAreTimesNotUndefinedBehaviour) {
  EXPECT_THAT(
      VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"exp", 1e300}}), kSecret, kNow),
      IsOk());
  EXPECT_THAT(
      VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"exp", -1e300}}), kSecret, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(
      VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"nbf", 1e300}}), kSecret, kNow),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("nbf")));
  EXPECT_THAT(
      VerifyJwtHs256(Token({{"sub", "u"}, {"workspaceId", "w"}, {"nbf", -1e300}}), kSecret, kNow),
      IsOk());
  // NumericDate may be fractional: 29.5 s past exp is still within the 30 s leeway.
  EXPECT_THAT(
      VerifyJwtHs256(
          Token({{"sub", "u"}, {"workspaceId", "w"}, {"exp", absl::ToUnixSeconds(kNow) - 29.5}}),
          kSecret, kNow),
      IsOk());
}

TEST(Authenticator, DevModeAcceptsEverythingAndTokenModeNeedsAToken) {
  Authenticator dev({.disabled = true}, nullptr);
  ASSERT_THAT(dev.Authenticate("", ""), IsOk());
  EXPECT_EQ(dev.Authenticate("", "")->workspace_id, "");
  Authenticator auth({.disabled = false, .jwt_secret = kSecret}, nullptr);
  EXPECT_THAT(auth.Authenticate("", ""), StatusIs(absl::StatusCode::kUnauthenticated,
                                                  HasSubstr("Authentication token required")));
  EXPECT_THAT(auth.Authenticate("opaque-session-token", ""),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("Invalid")));
  absl::StatusOr<Principal> p = auth.Authenticate(
      Token({{"sub", "u1"}, {"workspaceId", "w1"}, {"exp", absl::ToUnixSeconds(absl::Now()) + 60}}),
      "other-workspace-header-is-ignored-for-jwt");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->workspace_id, "w1");
}

TEST(RateLimiter, AllowsTheBurstThenAsksToWait) {
  RateLimiter limiter(/*per_minute=*/60, /*burst=*/2);
  EXPECT_EQ(limiter.Acquire("u", kNow), absl::ZeroDuration());
  EXPECT_EQ(limiter.Acquire("u", kNow), absl::ZeroDuration());
  const absl::Duration wait = limiter.Acquire("u", kNow);
  EXPECT_GT(wait, absl::ZeroDuration());
  EXPECT_LE(wait, absl::Seconds(1));
  EXPECT_EQ(limiter.Acquire("other", kNow), absl::ZeroDuration());
  EXPECT_EQ(limiter.Acquire("u", kNow + absl::Seconds(1)), absl::ZeroDuration());
  RateLimiter unlimited(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(unlimited.Acquire("u", kNow), absl::ZeroDuration());
}

TEST(Query, ParamsAreDecoded) {
  EXPECT_EQ(QueryParam("a=1&token=x%2By+z&b", "token"), "x+y z");
  EXPECT_EQ(QueryParam("a=1", "token"), "");
  EXPECT_EQ(BearerToken({{"authorization", "Bearer abc"}}, "token=q"), "abc");
  EXPECT_EQ(BearerToken({}, "token=q"), "q");
}

TEST(ApiJson, StatusesMapToNodeDropStrings) {
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_WAITING), "RUNNING");
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_CANCELLING), "RUNNING");
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_COMPLETED), "SUCCESS");
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_FAILED), "ERROR");
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_CANCELLED), "CANCELLED");
  EXPECT_EQ(RestStatus(v1::EXECUTION_STATE_TIMED_OUT), "TIMEOUT");
  EXPECT_EQ(StateName(v1::EXECUTION_STATE_TIMED_OUT), "timed_out");
  EXPECT_EQ(RestNodeStatus(v1::NODE_STATE_SKIPPED), "SKIPPED");
  EXPECT_EQ(StatesForRestStatus("running")->size(), 4u);
  EXPECT_FALSE(StatesForRestStatus("DONE").has_value());
}

TEST(ApiJson, EventsHaveNodeDropShapeWithSeqAndWorkflowId) {
  v1::ExecutionEvent e;
  e.set_seq(3);
  e.set_execution_id("x1");
  e.set_workflow_id("wf");
  e.set_type(v1::EVENT_TYPE_NODE_STARTED);
  e.set_type_name("node-started");
  e.set_node_id("n1");
  e.set_node_name("Set");
  e.set_node_type("set");
  e.mutable_timestamp()->set_seconds(1800000000);
  const Json j = EventToJson(e);
  EXPECT_EQ(j["executionId"], "x1");
  EXPECT_EQ(j["workflowId"], "wf");
  EXPECT_EQ(j["seq"], 3);
  EXPECT_EQ(j["type"], "node-started");
  EXPECT_EQ(j["nodeId"], "n1");
  EXPECT_EQ(j["data"]["nodeName"], "Set");
  EXPECT_EQ(j["data"]["nodeType"], "set");
  EXPECT_EQ(j["timestamp"], "2027-01-15T08:00:00.000Z");
  EXPECT_FALSE(j.contains("error"));
  e.set_type(v1::EVENT_TYPE_FAILED);
  e.set_type_name("failed");
  e.mutable_error()->set_message("boom");
  e.mutable_error()->set_code("NODE_EXECUTION_ERROR");
  const Json f = EventToJson(e);
  EXPECT_EQ(f["error"]["message"], "boom");
  EXPECT_EQ(f["error"]["code"], "NODE_EXECUTION_ERROR");
}

TEST(ApiJson, WorkflowJsonNamesTheBadField) {
  v1::Workflow wf;
  const Json good = Json::parse(R"({"id":"w","nodes":[{"id":"t","type":"manual-trigger",
      "parameters":{},"settings":{"retryOnFail":true,"maxRetries":2}},{"id":"s","type":"set"}],
      "connections":[{"id":"c","sourceNodeId":"t","targetNodeId":"s","sourceOutput":"main"}],
      "settings":{"executionTimeout":5000}})");
  ASSERT_THAT(WorkflowFromJson(good, "workflowData", &wf), IsOk());
  EXPECT_EQ(wf.nodes_size(), 2);
  EXPECT_TRUE(wf.nodes(0).settings().retry_on_fail());
  EXPECT_EQ(wf.nodes(0).settings().max_retries(), 2);
  EXPECT_EQ(wf.connections(0).target_node_id(), "s");
  EXPECT_EQ(wf.settings().execution_timeout_ms(), 5000);
  v1::Workflow bad;
  EXPECT_THAT(WorkflowFromJson(Json::parse(R"({"nodes":[{"id":"t","parameters":[]}]})"),
                               "workflowData", &bad),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("workflowData.nodes[0].parameters: must be an object")));
  EXPECT_THAT(WorkflowFromJson(Json::parse(R"({"nodes":{}})"), "workflowData", &bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("workflowData.nodes")));
  // A float setting outside int64_t's range was cast to int64_t to see whether it is whole
  // (undefined behaviour; UBSan aborts workflow_fuzzer on tests/fuzz/corpus/workflow/huge_setting).
  EXPECT_THAT(
      WorkflowFromJson(
          Json::parse(R"({"nodes":[{"id":"t","type":"noop","settings":{"maxRetries":1e300}}]})"),
          "workflowData", &bad),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("workflowData.nodes[0].settings.maxRetries: must be an integer")));
  EXPECT_THAT(WorkflowFromJson(Json::parse(R"({"nodes":[],"settings":{"executionTimeout":-1e19}})"),
                               "workflowData", &bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("executionTimeout")));
  EXPECT_THAT(WorkflowFromJson(Json::parse(R"({"nodes":[],"settings":{"executionTimeout":3e3}})"),
                               "workflowData", &bad),
              IsOk());
}

TEST(SocketIoPacket, DecodesTypeNamespaceAckIdAndPayload) {
  std::optional<SocketIoPacket> p = ParseSocketIoPacket(R"(21["subscribe-execution","x"])");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->type, '2');
  EXPECT_EQ(p->nsp, "/");
  EXPECT_EQ(p->ack_id, 1);
  EXPECT_EQ(p->payload, Json::parse(R"(["subscribe-execution","x"])"));
  p = ParseSocketIoPacket(R"(0/admin,{"token":"t"})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->type, '0');
  EXPECT_EQ(p->nsp, "/admin");
  EXPECT_FALSE(p->ack_id.has_value());
  EXPECT_EQ(p->payload["token"], "t");
  p = ParseSocketIoPacket("1");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->payload.is_null());
  p = ParseSocketIoPacket("299999999999999999999[1]");  // an ack id out of range is no ack id
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->ack_id.has_value());
  EXPECT_EQ(ParseSocketIoPacket("51-[\"x\"]")->type, '5');  // binary: only the type
  EXPECT_FALSE(ParseSocketIoPacket("").has_value());
  p = ParseSocketIoPacket("23[oops");  // not JSON: an error, and the ack id to answer it
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->ack_id, 3);
  EXPECT_EQ(p->error.message(), "packet: data is not valid JSON");
  // Too deep to copy or dump safely (libs/common/json_depth.h): refused before parsing.
  p = ParseSocketIoPacket("2[\"x\"," + std::string(100000, '[') + std::string(100001, ']'));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(p->payload.is_null());
  p = ParseSocketIoPacket("2[\"x\"," + std::string(900, '[') + std::string(901, ']'));
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->error.ok());
}

TEST(HttpParse, ParsesOneRequestAsTheServerDoes) {
  absl::StatusOr<HttpRequest> r = ParseHttpRequest(
      "POST /api/executions?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Workspace-Id: w1\r\n"
      "Content-Length: 7\r\n\r\n{\"a\":1}",
      1 << 20);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/api/executions");
  EXPECT_EQ(r->query, "a=1&b=2");
  EXPECT_EQ(r->headers["x-workspace-id"], "w1");
  EXPECT_EQ(r->body, R"({"a":1})");
  r = ParseHttpRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                       100);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->body, "abc");
  EXPECT_THAT(ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\n", 100),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 100),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHttpRequest("", 100), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHttpRequest("nonsense\r\n\r\n", 100),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 100),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

class GatewayRoutes : public ::testing::Test {
 protected:
  static config::GatewayConfig Config() {
    config::GatewayConfig c;
    c.http_address = "127.0.0.1:0";
    c.queue_server = "127.0.0.1:1";  // nothing listens: only routes decided before a call work
    c.log_level = "error";
    c.http_threads = 1;
    c.jwt_secret = kSecret;
    c.frontend_url = "http://app.example";
    c.rpc_timeout = absl::Milliseconds(300);
    return c;
  }
  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    HttpRequest r;
    r.method = method;
    const size_t q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) r.query = path.substr(q + 1);
    r.body = body;
    r.headers = std::move(headers);
    return gateway_.Handle(r);
  }
  std::map<std::string, std::string> Auth() {
    return {{"authorization",
             absl::StrCat("Bearer ", Token({{"sub", "u1"},
                                            {"workspaceId", "w1"},
                                            {"exp", absl::ToUnixSeconds(absl::Now()) + 600}}))}};
  }
  static std::string Code(const HttpResponse& r) {
    return Json::parse(r.body)["error"]["code"].get<std::string>();
  }
  Gateway gateway_{Config()};
};

TEST_F(GatewayRoutes, ApiRoutesNeedAToken) {
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/api/executions"},
           {"GET", "/api/executions"},
           {"GET", "/api/executions/abc"},
           {"GET", "/api/executions/abc/progress"},
           {"POST", "/api/executions/abc/cancel"},
           {"POST", "/api/executions/abc/retry"},
           {"DELETE", "/api/executions/abc"},
           {"GET", "/api/executions/stats"},
           {"GET", "/api/executions/queue/stats"},
           {"GET", "/api/executions/queue/failed"},
           {"POST", "/api/executions/queue/failed/abc/retry"},
           {"POST", "/api/workflows/wf/execute"}}) {
    SCOPED_TRACE(method + " " + path);
    HttpResponse r = Call(method, path);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(Code(r), "UNAUTHORIZED");
    EXPECT_THAT(r.body, HasSubstr("Authentication token required"));
  }
  HttpResponse bad = Call("GET", "/api/executions/abc", "",
                          {{"authorization", "Bearer " + Token({{"sub", "u"}, {"workspaceId", "w"}},
                                                               std::string(40, 'z'))}});
  EXPECT_EQ(bad.status, 401);
}

TEST_F(GatewayRoutes, BadIdsBodiesAndRoutesAreClearErrors) {
  HttpResponse r = Call("GET", "/api/executions/bad$id", "", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "INVALID_ID");
  r = Call("POST", "/api/executions", "{nope", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("request body is not valid JSON"));
  r = Call("POST", "/api/executions", R"({"workflowId": 7})", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("workflowId: must be a string"));
  r = Call("POST", "/api/executions", R"({"workflowId":"w","options":{"priority":"high"}})",
           Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("options.priority"));
  r = Call("POST", "/api/executions", "[1]", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("must be a JSON object"));
  // A huge timeout was cast to int64_t (undefined behaviour; UBSan aborts http_request_fuzzer on
  // tests/fuzz/corpus/http_request/huge_timeout).
  r = Call("POST", "/api/executions", R"({"workflowId":"w","options":{"timeout":1e300}})", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("options.timeout"));
  // 200 KB of nested arrays parse fine, then overflowed the stack when the gateway copied or
  // dumped them (triggerData is dumped into the request): the process crashed.
  r = Call("POST", "/api/executions",
           R"({"workflowId":"w","triggerData":)" + std::string(100000, '[') +
               std::string(100000, ']') + "}",
           Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("nested deeper than 1000 levels"));
  r = Call("GET", "/api/executions?limit=500", "", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("limit"));
  r = Call("GET", "/api/executions?status=DONE", "", Auth());
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("status"));
  r = Call("PUT", "/api/executions/abc", "", Auth());
  EXPECT_EQ(r.status, 405);
  r = Call("GET", "/api/nothing", "", Auth());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "NOT_FOUND");
}

TEST_F(GatewayRoutes, QueueDownIsUnavailableNotAnInternalError) {
  HttpResponse r = Call("GET", "/api/executions/abc", "", Auth());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "UNAVAILABLE");
  r = Call("DELETE", "/api/executions/abc", "", Auth());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Code(r), "UNAVAILABLE");
  r = Call("GET", "/api/executions/queue/workers", "", Auth());
  EXPECT_EQ(r.status, 503);
  HttpResponse h = Call("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(Json::parse(h.body)["status"], "degraded");
  EXPECT_EQ(Json::parse(h.body)["queue"]["status"], "error");
}

TEST_F(GatewayRoutes, CorsForTheFrontendOnly) {
  HttpResponse pre = Call("OPTIONS", "/api/executions", "", {{"origin", "http://app.example"}});
  EXPECT_EQ(pre.status, 204);
  auto has = [](const HttpResponse& r, const std::string& name, const std::string& value) {
    for (const auto& [n, v] : r.headers) {
      if (n == name && v == value) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(pre, "Access-Control-Allow-Origin", "http://app.example"));
  EXPECT_TRUE(has(pre, "Access-Control-Allow-Credentials", "true"));
  HttpResponse other = Call("OPTIONS", "/api/executions", "", {{"origin", "http://evil.example"}});
  for (const auto& [n, v] : other.headers) EXPECT_NE(n, "Access-Control-Allow-Origin");
}

TEST_F(GatewayRoutes, DashboardAndSocketIoPolling) {
  HttpResponse d = Call("GET", "/");
  EXPECT_EQ(d.status, 200);
  EXPECT_THAT(d.content_type, HasSubstr("text/html"));
  EXPECT_THAT(d.body, HasSubstr("subscribe-all"));
  HttpResponse poll = Call("GET", "/socket.io/?EIO=4&transport=polling");
  EXPECT_EQ(poll.status, 400);
  EXPECT_THAT(poll.body, HasSubstr("Transport unknown"));
}

}  // namespace
}  // namespace ndx::gateway
