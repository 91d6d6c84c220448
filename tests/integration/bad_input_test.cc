// The bad-input table (issue #10): hostile requests sent over every interface of a running suite
// (real redis-server, PostgreSQL, ndx-queue, ndx-worker and ndx-gateway processes): gRPC over
// loopback with the generated stubs, REST as raw HTTP/1.1, Socket.IO and /ws as raw WebSocket
// frames (Boost.Beast client), and workflow JSON through both. Every row asserts
//   - the exact answer: gRPC code, or HTTP status + NodeDrop's envelope {success: false, error:
//     {code, message}}, or the Socket.IO / WebSocket error frame, with a message that names the
//     field, node or variable;
//   - that nothing was left behind: no executions row, no Redis key of a new execution, the queue's
//     counters unchanged;
//   - that every process is still alive and healthy afterwards.
// Hostile code (Code nodes and expressions attacking the sandbox) is accepted, as it must be: the
// execution then fails within its time cap, naming the node, and the worker stays healthy with all
// of its slots free.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/websocket.hpp"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "ndx/v1/event_stream.grpc.pb.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "services/gateway/auth.h"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/http_client.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx {
namespace {

using ::ndx::testing::ChildProcess;
using ::ndx::testing::HttpReply;
using ::ndx::testing::IsOk;
using ::ndx::testing::WaitUntil;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const char kSecret[] = "bad-input-secret-bad-input-secret-0123";
constexpr size_t kMaxBody = 1 << 20;  // the gateway's default NDX_GATEWAY_MAX_BODY

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

std::string B64(std::string_view s) {
  std::string out;
  absl::WebSafeBase64Escape(absl::string_view(s.data(), s.size()), &out);
  return out;
}

Json Claims(const std::string& workspace, int64_t exp_from_now = 3600) {
  return {{"sub", absl::StrCat("user-", workspace)},
          {"workspaceId", workspace},
          {"exp", absl::ToUnixSeconds(absl::Now()) + exp_from_now}};
}

std::string Jwt(const Json& claims, const std::string& secret = kSecret) {
  return gateway::SignJwtHs256(claims.dump(), secret);
}

// A token with any header. The gateway refuses a header that is not HS256 before it looks at the
// signature, so any signature does.
std::string JwtWithHeader(const Json& header, const Json& claims) {
  return absl::StrCat(B64(header.dump()), ".", B64(claims.dump()), ".", B64("signature"));
}

std::string TokenA() { return Jwt(Claims("ws-a")); }
std::string TokenB() { return Jwt(Claims("ws-b")); }

// ---------------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------------

Json Node(const std::string& id, const std::string& type, Json parameters = Json::object(),
          const std::string& name = "") {
  return {{"id", id},
          {"name", name.empty() ? id : name},
          {"type", type},
          {"parameters", std::move(parameters)}};
}

Json Edge(const std::string& from, const std::string& to, const std::string& output = "main") {
  return {{"sourceNodeId", from}, {"sourceOutput", output}, {"targetNodeId", to}};
}

// Manual Trigger -> `node` (id "x"): the shape of every hostile-code row.
Json TriggerThen(Json node) {
  return {{"nodes", Json::array({Node("t", "manual-trigger"), std::move(node)})},
          {"connections", Json::array({Edge("t", "x")})}};
}

std::string StartBody(const Json& workflow_data, const std::string& workflow_id = "wf-bad") {
  return Json{{"workflowId", workflow_id}, {"triggerNodeId", "t"}, {"workflowData", workflow_data}}
      .dump();
}

// A StartBody with `patch` merged into it (wrong types of top-level fields).
std::string StartBodyWith(const Json& patch) {
  Json body = Json::parse(StartBody(TriggerThen(Node("x", "noop"))));
  body.merge_patch(patch);
  return body.dump();
}

std::string Nested(int depth, const std::string& inner = "1") {
  return absl::StrCat(std::string(depth, '['), inner, std::string(depth, ']'));
}

// ---------------------------------------------------------------------------------------------
// A raw WebSocket client (Boost.Beast): sends exactly the frames a row gives.
// ---------------------------------------------------------------------------------------------

class WsClient {
 public:
  WsClient() : ws_(ioc_) {}
  ~WsClient() { Close(); }

  // Connects and upgrades at `target`. Returns the HTTP status of a refused upgrade (401...),
  // 101 when the WebSocket is open, 0 when nothing answered.
  int Connect(int port, const std::string& target, const std::string& authorization = "") {
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port);
    beast::error_code ec;
    beast::get_lowest_layer(ws_).connect(ep, ec);
    if (ec) return 0;
    if (!authorization.empty()) {
      ws_.set_option(websocket::stream_base::decorator([authorization](websocket::request_type& r) {
        r.set(beast::http::field::authorization, authorization);
      }));
    }
    websocket::response_type res;
    ws_.handshake(res, "127.0.0.1", target, ec);
    if (ec) return res.result_int();
    ws_.read_message_max(64 << 20);
    open_ = true;
    return 101;
  }

  bool SendText(const std::string& text) { return Write(text, false); }
  bool SendBinary(const std::string& data) { return Write(data, true); }

  // The next frame, or nullopt when the connection closed (or nothing came within `timeout`: the
  // connection is then closed too).
  std::optional<std::string> Read(absl::Duration timeout = absl::Seconds(10)) {
    if (!open_) return std::nullopt;
    boost::beast::flat_buffer buffer;
    boost::beast::error_code result = boost::asio::error::would_block;
    ws_.async_read(buffer, [&](boost::beast::error_code ec, size_t) { result = ec; });
    ioc_.restart();
    ioc_.run_for(absl::ToChronoMilliseconds(timeout));
    if (result == boost::asio::error::would_block) {
      boost::beast::get_lowest_layer(ws_).close();
      ioc_.restart();
      ioc_.run();
      open_ = false;
      return std::nullopt;
    }
    if (result) {
      open_ = false;
      return std::nullopt;
    }
    return boost::beast::buffers_to_string(buffer.data());
  }

  // Reads until a frame starts with `prefix` (skipping Engine.IO pings and other events);
  // nullopt when the connection closed first.
  std::optional<std::string> ReadUntil(const std::string& prefix,
                                       absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::optional<std::string> f = Read(deadline - absl::Now());
      if (!f) return std::nullopt;
      seen_.push_back(*f);
      if (absl::StartsWith(*f, prefix)) return f;
    }
    return std::nullopt;
  }

  bool open() const { return open_; }
  // Every frame ReadUntil went past, in order.
  const std::vector<std::string>& seen() const { return seen_; }

  void Close() {
    if (!open_) return;
    boost::beast::get_lowest_layer(ws_).close();
    open_ = false;
  }

 private:
  bool Write(const std::string& data, bool binary) {
    if (!open_) return false;
    boost::beast::error_code ec;
    ws_.binary(binary);
    ws_.write(boost::asio::buffer(data), ec);
    return !ec;
  }

  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  bool open_ = false;
  std::vector<std::string> seen_;
};

// ---------------------------------------------------------------------------------------------
// The suite: one set of processes for the whole binary.
// ---------------------------------------------------------------------------------------------

struct Snapshot {
  int64_t rows = -1;
  std::set<std::string> execution_keys;
  std::map<std::string, int64_t> stats;
};

class Suite : public ::testing::Environment {
 public:
  void SetUp() override {
    dir = testing::MakeTempDir("ndx-bad-input");
    ASSERT_THAT(redis.Start(), IsOk());
    ASSERT_THAT(pg.Start(), IsOk());
    ASSERT_THAT(pg.CreateDatabase("ndx"), IsOk());
    // NodeDrop's better-auth sessions table (the columns the gateway reads).
    ChildProcess psql;
    ASSERT_THAT(psql.Start({"psql", pg.url("ndx"), "-v", "ON_ERROR_STOP=1", "-c",
                            "CREATE TABLE sessions (id text, token text, user_id text, "
                            "expires_at timestamptz); INSERT INTO sessions VALUES "
                            "('s1', 'session-ok', 'user-s', now() + interval '1 hour'), "
                            "('s2', 'session-expired', 'user-s', now() - interval '1 hour');"},
                           dir + "/psql.log"),
                IsOk());
    ASSERT_EQ(psql.Wait(), 0) << testing::ReadFile(dir + "/psql.log");
    queue_port = testing::FreePort();
    worker_port = testing::FreePort();
    worker_metrics_port = testing::FreePort();
    gateway_port = testing::FreePort();
    const std::map<std::string, std::string> env = {
        {"REDIS_URL", redis.url()},
        {"DATABASE_URL", pg.url("ndx")},
        {"NDX_QUEUE_ADDR", absl::StrCat("127.0.0.1:", queue_port)},
        {"NDX_QUEUE_METRICS_ADDR", absl::StrCat("127.0.0.1:", testing::FreePort())},
        {"NDX_WORKER_ADDR", absl::StrCat("127.0.0.1:", worker_port)},
        {"NDX_WORKER_METRICS_ADDR", absl::StrCat("127.0.0.1:", worker_metrics_port)},
        {"NDX_GATEWAY_ADDR", absl::StrCat("127.0.0.1:", gateway_port)},
        {"NDX_QUEUE_SERVER", absl::StrCat("127.0.0.1:", queue_port)},
        {"NDX_JWT_SECRET", kSecret},
        {"NDX_EXECUTIONS_PER_MINUTE", "0"},  // no rate limit: the rows are many
        {"NDX_RETRY_BACKOFF", "100ms"},
    };
    ASSERT_THAT(queue.Start({NDX_QUEUE_BIN}, dir + "/queue.log", env), IsOk());
    ASSERT_THAT(worker.Start({NDX_WORKER_BIN}, dir + "/worker.log", env), IsOk());
    ASSERT_THAT(gateway.Start({NDX_GATEWAY_BIN}, dir + "/gateway.log", env), IsOk());
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto h = testing::HttpGet(gateway_port, "/health");
          return h.ok() && absl::StrContains(h->body, "\"status\":\"ok\"") && Serving(worker_port);
        },
        absl::Seconds(30)))
        << testing::ReadFile(dir + "/queue.log") << testing::ReadFile(dir + "/gateway.log");
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", queue_port),
                                       grpc::InsecureChannelCredentials());
    queue_stub = v1::QueueService::NewStub(channel);
    events_stub = v1::EventStream::NewStub(channel);
    redis_pool = std::make_unique<redis::RedisPool>(*redis::ParseRedisUrl(redis.url()), 2);
    absl::StatusOr<std::unique_ptr<pg::PgPool>> p = pg::PgPool::Create({.conninfo = pg.url("ndx")});
    ASSERT_THAT(p, IsOk());
    pg_pool = *std::move(p);
    // One execution of workspace A that the ownership rows try to reach as workspace B.
    HttpReply r = testing::HttpCall(gateway_port, "POST", "/api/executions", TokenA(),
                                    StartBody(TriggerThen(Node("x", "noop")), "wf-owned"));
    ASSERT_EQ(r.status, 201) << r.body;
    owned_id = Json::parse(r.body)["data"]["executionId"];
    // Finished before the rows start: their before/after snapshots must not see it move.
    ASSERT_TRUE(WaitUntil(
        [&] {
          const HttpReply g =
              testing::HttpCall(gateway_port, "GET", "/api/executions/" + owned_id, TokenA());
          return absl::StrContains(g.body, "\"status\":\"SUCCESS\"");
        },
        absl::Seconds(30)));
  }

  void TearDown() override {
    queue_stub.reset();
    events_stub.reset();
    redis_pool.reset();
    pg_pool.reset();
    for (ChildProcess* p : {&gateway, &worker, &queue}) {
      p->Signal(SIGTERM);
      (void)p->WaitFor(absl::Seconds(10));
    }
  }

  static bool Serving(int port) {
    absl::StatusOr<testing::ServingStatus> s =
        testing::CheckHealth(absl::StrCat("127.0.0.1:", port), "");
    return s.ok() && *s == testing::ServingStatus::kServing;
  }

  Snapshot Take() {
    Snapshot s;
    absl::StatusOr<int64_t> rows = pg_pool->Transact([](pqxx::work& tx) -> absl::StatusOr<int64_t> {
      return tx.exec1("SELECT count(*) FROM executions")[0].as<int64_t>();
    });
    if (rows.ok()) s.rows = *rows;
    absl::StatusOr<redis::RedisPool::Lease> lease = redis_pool->Acquire(absl::Seconds(2));
    if (lease.ok()) {
      absl::StatusOr<redis::RedisReply> keys = (*lease)->Command({"KEYS", "ndx:*"});
      if (keys.ok()) {
        for (const redis::RedisReply& k : keys->elements()) {
          // Keys of one execution: its job hash, event log, outputs, idempotency entry.
          for (const char* part : {"}:j:", "}:ev:", "}:o:", "}:idem:"}) {
            if (absl::StrContains(k.str(), part)) s.execution_keys.insert(k.str());
          }
        }
      }
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetQueueStatsResponse stats;
    if (queue_stub->GetQueueStats(&ctx, v1::GetQueueStatsRequest(), &stats).ok()) {
      for (const v1::QueueStats& q : stats.queues()) {
        s.stats[q.queue() + ".waiting"] = q.waiting();
        s.stats[q.queue() + ".active"] = q.active();
        s.stats[q.queue() + ".delayed"] = q.delayed();
        s.stats[q.queue() + ".completed"] = q.completed();
        s.stats[q.queue() + ".failed"] = q.failed();
        s.stats[q.queue() + ".cancelled"] = q.cancelled();
      }
    }
    return s;
  }

  // Nothing new since `before`: no executions row, no execution key in Redis, same counters.
  void ExpectNothingLeft(const Snapshot& before) {
    const Snapshot after = Take();
    EXPECT_EQ(after.rows, before.rows) << "an executions row was left behind";
    std::vector<std::string> added;
    for (const std::string& k : after.execution_keys) {
      if (!before.execution_keys.contains(k)) added.push_back(k);
    }
    EXPECT_THAT(added, ::testing::IsEmpty()) << "Redis keys of a new execution were left behind";
    EXPECT_EQ(after.stats, before.stats) << "the queue's counters moved";
  }

  // Every process runs and answers health: the gateway /health (with the queue reachable), the
  // queue's and the worker's gRPC health.
  void ExpectAlive() {
    for (auto [p, name] : {std::pair{&queue, "ndx-queue"}, std::pair{&worker, "ndx-worker"},
                           std::pair{&gateway, "ndx-gateway"}}) {
      ASSERT_TRUE(p->Running()) << name << " died; log:\n"
                                << testing::ReadFile(p->log_path()).substr(0, 20000);
    }
    absl::StatusOr<testing::HttpResult> h = testing::HttpGet(gateway_port, "/health");
    ASSERT_THAT(h, IsOk());
    EXPECT_EQ(h->status, 200);
    EXPECT_THAT(h->body, HasSubstr("\"status\":\"ok\""));
    EXPECT_TRUE(Serving(queue_port));
    EXPECT_TRUE(Serving(worker_port));
  }

  std::string dir;
  testing::RedisServer redis;
  testing::PostgresServer pg;
  ChildProcess queue, worker, gateway;
  int queue_port = 0, worker_port = 0, worker_metrics_port = 0, gateway_port = 0;
  std::unique_ptr<v1::QueueService::Stub> queue_stub;
  std::unique_ptr<v1::EventStream::Stub> events_stub;
  std::unique_ptr<redis::RedisPool> redis_pool;
  std::unique_ptr<pg::PgPool> pg_pool;
  std::string owned_id;  // an execution of workspace A
};

Suite* const suite = static_cast<Suite*>(::testing::AddGlobalTestEnvironment(new Suite));

// Prints the services' logs when a row failed.
class BadInputTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- gateway.log (head)\n"
                << testing::ReadFile(suite->dir + "/gateway.log").substr(0, 8000)
                << "--- queue.log (head)\n"
                << testing::ReadFile(suite->dir + "/queue.log").substr(0, 8000);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// REST: the request text, the answer.
// ---------------------------------------------------------------------------------------------

struct RestRow {
  const char* name;
  std::function<std::string()> request;  // the raw HTTP/1.1 request
  int status;
  const char* code;  // error.code
  const char* says;  // a substring of error.message
};
void PrintTo(const RestRow& row, std::ostream* os) { *os << row.name; }

std::string Post(const std::string& body, const std::string& token = TokenA(),
                 const std::string& headers = "") {
  return testing::HttpRequestText("POST", "/api/executions", token, body, false, headers);
}
std::string Get(const std::string& path, const std::string& token = TokenA()) {
  return testing::HttpRequestText("GET", path, token, "");
}

std::vector<RestRow> RestRows() {
  return {
      // Size and encoding.
      {"BodyOverTheLimit", [] { return Post(std::string(kMaxBody + 1, ' ')); }, 413,
       "PAYLOAD_TOO_LARGE", "larger than 1048576 bytes"},
      {"JsonNested10000Deep",
       [] { return Post(absl::StrCat(R"({"workflowId":"w","triggerData":)", Nested(10000), "}")); },
       400, "INVALID_ARGUMENT", "request body: JSON nested deeper than 1000 levels"},
      {"JsonNestedToTheBodyLimitInNodeParameters",
       [] {
         return Post(absl::StrCat(
             R"({"workflowData":{"nodes":[{"id":"t","type":"manual-trigger","parameters":{"p":)",
             Nested(500000), "}}]}}"));
       },
       400, "INVALID_ARGUMENT", "JSON nested deeper than 1000 levels"},
      {"InvalidUtf8InAString",
       [] { return Post("{\"workflowId\":\"w\xff\xfe\",\"workflowData\":{\"nodes\":[]}}"); }, 400,
       "INVALID_ARGUMENT", "not valid JSON (at byte"},
      {"NotJson", [] { return Post("{\"workflowId\":"); }, 400, "INVALID_ARGUMENT",
       "request body is not valid JSON"},
      {"BodyIsAnArray", [] { return Post("[1,2]"); }, 400, "INVALID_ARGUMENT",
       "request body: must be a JSON object"},
      {"MalformedHeader",
       [] {
         return std::string(
             "POST /api/executions HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01z\r\nContent-Length: "
             "0\r\n\r\n");
       },
       400, "BAD_REQUEST", "malformed HTTP request"},
      // Wrong types of each top-level field.
      {"WorkflowIdNotAString",
       [] {
         return Post(StartBodyWith({{"workflowId", 5}}));
       },
       400, "INVALID_ARGUMENT", "workflowId: must be a string"},
      {"TriggerNodeIdNotAString",
       [] {
         return Post(StartBodyWith({{"triggerNodeId", {1}}}));
       },
       400, "INVALID_ARGUMENT", "triggerNodeId: must be a string"},
      {"ModeNotAString",
       [] {
         return Post(StartBodyWith({{"mode", 7}}));
       },
       400, "INVALID_ARGUMENT", "mode: must be a string"},
      {"ModeUnknown",
       [] {
         return Post(StartBodyWith({{"mode", "all"}}));
       },
       400, "INVALID_ARGUMENT", "mode: must be \"single\" or \"workflow\""},
      {"NodeIdNotAString",
       [] {
         return Post(StartBodyWith({{"nodeId", true}}));
       },
       400, "INVALID_ARGUMENT", "nodeId: must be a string"},
      {"WorkflowDataNotAnObject",
       [] {
         return Post(StartBodyWith({{"workflowData", "wf"}}));
       },
       400, "INVALID_ARGUMENT", "workflowData: must be a JSON object"},
      {"NodesNotAnArray",
       [] {
         return Post(StartBodyWith({{"workflowData", {{"nodes", {{"a", 1}}}}}}));
       },
       400, "INVALID_ARGUMENT", "workflowData.nodes: missing or not an array"},
      {"ConnectionsNotAnArray",
       [] {
         return Post(StartBodyWith({{"workflowData", {{"connections", "t->x"}}}}));
       },
       400, "INVALID_ARGUMENT", "workflowData.connections: must be an array"},
      {"SettingsNotAnObject",
       [] {
         return Post(StartBodyWith({{"workflowData", {{"settings", {1, 2}}}}}));
       },
       400, "INVALID_ARGUMENT", "workflowData.settings: must be an object"},
      {"WorkflowNameNotAString",
       [] {
         return Post(StartBodyWith({{"workflowData", {{"name", {{"x", 1}}}}}}));
       },
       400, "INVALID_ARGUMENT", "workflowData.name: must be a string"},
      {"NodeNotAnObject",
       [] {
         return Post(StartBody({{"nodes", {5}}, {"connections", Json::array()}}));
       },
       400, "INVALID_ARGUMENT", "workflowData.nodes[0]: must be an object"},
      {"NodeParametersNotAnObject",
       [] {
         return Post(StartBody(TriggerThen(Node("x", "noop", {1, 2}))));
       },
       400, "INVALID_ARGUMENT", "workflowData.nodes[1].parameters: must be an object"},
      {"NodeSettingWrongType",
       [] {
         Json n = Node("x", "noop");
         n["settings"] = {{"maxRetries", "three"}};
         return Post(StartBody(TriggerThen(n)));
       },
       400, "INVALID_ARGUMENT", "workflowData.nodes[1].settings.maxRetries: must be an integer"},
      {"OptionsNotAnObject",
       [] {
         return Post(StartBodyWith({{"options", {1}}}));
       },
       400, "INVALID_ARGUMENT", "options: must be an object"},
      {"UseQueueNotABoolean",
       [] {
         return Post(StartBodyWith({{"options", {{"useQueue", "yes"}}}}));
       },
       400, "INVALID_ARGUMENT", "options.useQueue: must be a boolean"},
      {"PriorityBeyondInt32",
       [] {
         return Post(StartBodyWith({{"options", {{"priority", 4294967301}}}}));
       },
       400, "INVALID_ARGUMENT", "options.priority: must be an integer in -1000..1000"},
      {"TimeoutHuge",
       [] {
         return Post(StartBodyWith({{"options", {{"timeout", 1e300}}}}));
       },
       400, "INVALID_ARGUMENT", "options.timeout: must be a positive number of milliseconds"},
      {"TimeoutNotANumber",
       [] {
         return Post(StartBodyWith({{"options", {{"timeout", "5s"}}}}));
       },
       400, "INVALID_ARGUMENT", "options.timeout"},
      {"MaxAttemptsZero",
       [] {
         return Post(StartBodyWith({{"options", {{"maxAttempts", 0}}}}));
       },
       400, "INVALID_ARGUMENT", "options.maxAttempts: must be an integer in 1..100"},
      {"QueueNameHostile",
       [] {
         return Post(StartBodyWith({{"options", {{"queue", "../../etc"}}}}));
       },
       400, "INVALID_ARGUMENT", "queue: \"../../etc\" is not"},
      {"IdempotencyKeyTooLong",
       [] {
         return Post(StartBodyWith(Json::object()), TokenA(),
                     absl::StrCat("Idempotency-Key: ", std::string(300, 'k'), "\r\n"));
       },
       400, "INVALID_ARGUMENT", "request_id: longer than 128 characters"},
      {"IdempotencyKeyInvalidUtf8",
       [] {
         return Post(StartBodyWith(Json::object()), TokenA(), "Idempotency-Key: k\xff\xfe\r\n");
       },
       400, "INVALID_ARGUMENT", "Idempotency-Key: must be printable ASCII"},
      {"NeitherWorkflowIdNorData", [] { return Post(R"({"triggerNodeId":"t"})"); }, 400,
       "INVALID_ARGUMENT", "workflowId: required"},
      // The graph.
      {"DanglingConnection",
       [] {
         Json wf = TriggerThen(Node("x", "noop"));
         wf["connections"].push_back(Edge("x", "ghost"));
         return Post(StartBody(wf));
       },
       400, "INVALID_ARGUMENT", "node \"ghost\" does not exist"},
      {"Cycle",
       [] {
         Json wf = TriggerThen(Node("x", "noop", Json::object(), "Hop A"));
         wf["nodes"].push_back(Node("y", "noop", Json::object(), "Hop B"));
         wf["connections"].push_back(Edge("x", "y"));
         wf["connections"].push_back(Edge("y", "x"));
         return Post(StartBody(wf));
       },
       400, "INVALID_ARGUMENT", "cycle detected through node \"Hop"},
      {"SelfLoop",
       [] {
         Json wf = TriggerThen(Node("x", "noop", Json::object(), "Narcissus"));
         wf["connections"].push_back(Edge("x", "x"));
         return Post(StartBody(wf));
       },
       400, "INVALID_ARGUMENT", "\"Narcissus\" (x) is connected to itself"},
      {"UnknownNodeType",
       [] { return Post(StartBody(TriggerThen(Node("x", "rm-rf", Json::object(), "Evil")))); }, 400,
       "INVALID_ARGUMENT", "\"Evil\" (x): unknown node type \"rm-rf\""},
      {"DuplicateNodeId",
       [] {
         Json wf = TriggerThen(Node("x", "noop"));
         wf["nodes"].push_back(Node("x", "noop"));
         return Post(StartBody(wf));
       },
       400, "INVALID_ARGUMENT", "duplicate node id \"x\""},
      {"TriggerNodeMissing",
       [] {
         Json body = Json::parse(StartBody(TriggerThen(Node("x", "noop"))));
         body["triggerNodeId"] = "nope";
         return Post(body.dump());
       },
       400, "INVALID_ARGUMENT", "node \"nope\" does not exist"},
      {"PythonCode",
       [] {
         return Post(StartBody(
             TriggerThen(Node("x", "code", {{"language", "python"}, {"code", "import os"}}))));
       },
       400, "INVALID_ARGUMENT", "language \"python\" is not supported"},
      {"NodesBeyondTheLimit",
       [] {
         Json nodes = Json::array({Node("t", "manual-trigger")});
         for (int i = 0; i < 5001; ++i)
           nodes.push_back({{"id", absl::StrCat(i)}, {"type", "noop"}});
         return Post(StartBody({{"nodes", nodes}}));
       },
       400, "INVALID_ARGUMENT", "5002 nodes; at most 5000"},
      {"JsonNodeDataNested500000Deep",
       [] {
         return Post(StartBody(TriggerThen(
             Node("x", "json", {{"mode", "json"}, {"jsonData", Nested(500000)}}, "Deep JSON"))));
       },
       400, "INVALID_ARGUMENT", "node \"Deep JSON\" (x): parameter \"jsonData\" is not valid JSON"},
      {"TriggerDefaultDataNested500000Deep",
       [] {
         Json wf = TriggerThen(Node("x", "noop"));
         wf["nodes"][0]["parameters"] = {{"defaultData", Nested(500000)}};
         return Post(StartBody(wf));
       },
       400, "INVALID_ARGUMENT", "parameter \"defaultData\" is not valid JSON"},
      // Paths and queries.
      {"IdTooLong", [] { return Get("/api/executions/" + std::string(200, 'a')); }, 400,
       "INVALID_ID", "is not a valid id"},
      {"IdWithInvalidUtf8", [] { return Get("/api/executions/%FF%FE"); }, 400, "INVALID_ID",
       "is not a valid id"},
      {"LimitHuge", [] { return Get("/api/executions?limit=100000000000000000000000"); }, 400,
       "INVALID_ARGUMENT", "limit: "},
      {"PageNegative", [] { return Get("/api/executions?page=-1"); }, 400, "INVALID_ARGUMENT",
       "page: \"-1\" is not an integer in 1..1000000"},
      {"StatusInvalidUtf8", [] { return Get("/api/executions?status=%FF"); }, 400,
       "INVALID_ARGUMENT", "status: "},
      {"StartedAfterNotATime", [] { return Get("/api/executions?startedAfter=yesterday"); }, 400,
       "INVALID_ARGUMENT", "startedAfter: \"yesterday\" is not an ISO 8601 time"},
      {"UnknownRoute", [] { return Get("/api/executions/x/y/z"); }, 404, "NOT_FOUND",
       "route not found"},
      {"WrongMethod", [] { return testing::HttpRequestText("PUT", "/api/executions", "", ""); },
       405, "METHOD_NOT_ALLOWED", "PUT is not allowed"},
      // Tokens.
      {"NoToken", [] { return Get("/api/executions", ""); }, 401, "UNAUTHORIZED",
       "Authentication token required"},
      {"JwtForged", [] { return Get("/api/executions", Jwt(Claims("ws-a"), "not-the-secret")); },
       401, "UNAUTHORIZED", "bad JWT signature"},
      {"JwtAlgNone",
       [] {
         return Get("/api/executions", absl::StrCat(B64(R"({"alg":"none","typ":"JWT"})"), ".",
                                                    B64(Claims("ws-a").dump()), "."));
       },
       401, "UNAUTHORIZED", "JWT alg must be HS256"},
      {"JwtAlgHs512",
       [] {
         return Get("/api/executions", JwtWithHeader({{"alg", "HS512"}}, Claims("ws-a")));
       },
       401, "UNAUTHORIZED", "JWT alg must be HS256"},
      {"JwtExpired", [] { return Get("/api/executions", Jwt(Claims("ws-a", -3600))); }, 401,
       "UNAUTHORIZED", "Session expired"},
      {"JwtNotYetValid",
       [] {
         Json c = Claims("ws-a");
         c["nbf"] = absl::ToUnixSeconds(absl::Now()) + 3600;
         return Get("/api/executions", Jwt(c));
       },
       401, "UNAUTHORIZED", "not valid yet"},
      {"JwtExpNotANumber",
       [] {
         Json c = Claims("ws-a");
         c["exp"] = "never";
         return Get("/api/executions", Jwt(c));
       },
       401, "UNAUTHORIZED", "exp not a number"},
      {"JwtWithoutWorkspace",
       [] {
         return Get("/api/executions", Jwt({{"sub", "u"}}));
       },
       401, "UNAUTHORIZED", "no workspaceId claim"},
      {"JwtClaimsNotAnObject", [] { return Get("/api/executions", Jwt(Json::array({1}))); }, 401,
       "UNAUTHORIZED", "bad JWT claims"},
      {"JwtBadBase64", [] { return Get("/api/executions", "!!!.???.***"); }, 401, "UNAUTHORIZED",
       "bad base64url"},
      {"JwtHeaderNotJson",
       [] {
         return Get("/api/executions",
                    absl::StrCat(B64("{not json"), ".", B64("{}"), ".", B64("s")));
       },
       401, "UNAUTHORIZED", "bad JWT header"},
      {"TokenWithFourSegments", [] { return Get("/api/executions", "a.b.c.d"); }, 401,
       "UNAUTHORIZED", "Invalid authentication token"},
      {"SessionTokenUnknown", [] { return Get("/api/executions", "no-such-session"); }, 401,
       "UNAUTHORIZED", "Invalid authentication token"},
      {"SessionTokenExpired", [] { return Get("/api/executions", "session-expired"); }, 401,
       "UNAUTHORIZED", "Session expired"},
      {"SessionTokenInvalidUtf8", [] { return Get("/api/executions", "\xff\xfe\xfd"); }, 401,
       "UNAUTHORIZED", "Invalid authentication token"},
      {"WorkspaceHeaderInvalidUtf8",
       [] {
         return testing::HttpRequestText("GET", "/api/executions", "session-ok", "", false,
                                         "X-Workspace-Id: \xff\xfe\r\n");
       },
       400, "INVALID_ARGUMENT", "x-workspace-id: must be printable ASCII"},
      {"TokenLargerThanTheHeaderLimit",
       [] { return Get("/api/executions", std::string(100000, 'a')); }, 400, "BAD_REQUEST",
       "malformed HTTP request"},
  };
}

class RestTable : public BadInputTest, public ::testing::WithParamInterface<RestRow> {};

TEST_P(RestTable, ClearErrorAndNothingLeftBehind) {
  const RestRow& row = GetParam();
  const Snapshot before = suite->Take();
  std::vector<HttpReply> replies = testing::HttpExchange(suite->gateway_port, {row.request()});
  ASSERT_EQ(replies.size(), 1u) << "no answer";
  const HttpReply& r = replies[0];
  EXPECT_EQ(r.status, row.status) << r.body;
  const Json body = Json::parse(r.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body["success"], false) << r.body;
  EXPECT_EQ(body["error"]["code"], row.code) << r.body;
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr(row.says));
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

INSTANTIATE_TEST_SUITE_P(Rows, RestTable, ::testing::ValuesIn(RestRows()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Ownership: another workspace's execution does not exist for you, on every interface, with the
// same answer as an id that exists nowhere (no leak of its existence).
// ---------------------------------------------------------------------------------------------

TEST_F(BadInputTest, AnotherWorkspacesExecutionIsNotFoundEverywhere) {
  const std::string id = suite->owned_id;
  const std::string nowhere = "00000000-0000-4000-8000-000000000000";
  const Snapshot before = suite->Take();
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/executions/:id"},
           {"GET", "/api/executions/:id/progress"},
           {"POST", "/api/executions/:id/cancel"},
           {"POST", "/api/executions/:id/retry"},
           {"POST", "/api/executions/queue/failed/:id/retry"}}) {
    SCOPED_TRACE(method + " " + path);
    const HttpReply theirs = testing::HttpCall(suite->gateway_port, method,
                                               absl::StrReplaceAll(path, {{":id", id}}), TokenB());
    const HttpReply none = testing::HttpCall(
        suite->gateway_port, method, absl::StrReplaceAll(path, {{":id", nowhere}}), TokenB());
    EXPECT_EQ(theirs.status, 404) << theirs.body;
    EXPECT_EQ(Json::parse(theirs.body)["error"]["code"], "EXECUTION_NOT_FOUND");
    EXPECT_EQ(absl::StrReplaceAll(theirs.body, {{id, "ID"}}),
              absl::StrReplaceAll(none.body, {{nowhere, "ID"}}));
  }
  // DELETE /api/executions/:id is being implemented elsewhere: only its ownership is asserted.
  EXPECT_NE(
      testing::HttpCall(suite->gateway_port, "DELETE", "/api/executions/" + id, TokenB()).status,
      200);
  // The list of workspace B does not show it.
  const HttpReply list = testing::HttpCall(suite->gateway_port, "GET", "/api/executions", TokenB());
  EXPECT_EQ(list.status, 200);
  EXPECT_THAT(list.body, ::testing::Not(HasSubstr(id)));

  // gRPC, as workspace B.
  {
    grpc::ClientContext ctx;
    v1::GetExecutionRequest req;
    req.set_execution_id(id);
    req.set_workspace_id("ws-b");
    v1::Execution e;
    grpc::Status s = suite->queue_stub->GetExecution(&ctx, req, &e);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_EQ(s.error_message(), absl::StrCat("execution ", id, " not found"));
  }
  {
    grpc::ClientContext ctx;
    v1::CancelExecutionRequest req;
    req.set_execution_id(id);
    req.set_workspace_id("ws-b");
    v1::Execution e;
    EXPECT_EQ(suite->queue_stub->CancelExecution(&ctx, req, &e).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::SubscribeRequest req;
    req.set_execution_id(id);
    req.set_workspace_id("ws-b");
    auto reader = suite->events_stub->Subscribe(&ctx, req);
    v1::ExecutionEvent ev;
    EXPECT_FALSE(reader->Read(&ev)) << "an event of another workspace: " << ev.DebugString();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Socket.IO and /ws, as workspace B.
  {
    WsClient sio;
    ASSERT_EQ(sio.Connect(suite->gateway_port, "/socket.io/?EIO=4&transport=websocket"), 101);
    ASSERT_TRUE(sio.ReadUntil("0{"));
    sio.SendText(absl::StrCat("40", Json{{"token", TokenB()}}.dump()));
    ASSERT_TRUE(sio.ReadUntil("40"));
    sio.SendText(absl::StrCat("427", Json::array({"subscribe-execution", id}).dump()));
    std::optional<std::string> ack = sio.ReadUntil("437");
    ASSERT_TRUE(ack);
    const Json a = Json::parse(ack->substr(3))[0];
    EXPECT_EQ(a["success"], false);
    EXPECT_EQ(a["code"], "NOT_FOUND");
  }
  {
    WsClient ws;
    ASSERT_EQ(ws.Connect(suite->gateway_port, "/ws", "Bearer " + TokenB()), 101);
    ASSERT_TRUE(ws.Read());  // welcome
    ws.SendText(Json{{"type", "subscribe"}, {"executionId", id}}.dump());
    std::optional<std::string> err = ws.ReadUntil("{\"code\"");
    ASSERT_TRUE(err) << ::testing::PrintToString(ws.seen());
    EXPECT_EQ(Json::parse(*err)["code"], "NOT_FOUND");
    EXPECT_EQ(Json::parse(*err)["type"], "error");
  }
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
  // And the owner still sees it, unchanged.
  const HttpReply mine =
      testing::HttpCall(suite->gateway_port, "GET", "/api/executions/" + id, TokenA());
  EXPECT_EQ(mine.status, 200) << mine.body;
}

// ---------------------------------------------------------------------------------------------
// gRPC: QueueService and EventStream called directly (no gateway in front).
// ---------------------------------------------------------------------------------------------

v1::ExecuteWorkflowRequest SmallRequest() {
  v1::ExecuteWorkflowRequest r;
  v1::Workflow* wf = r.mutable_workflow();
  wf->set_id("wf-grpc");
  v1::Node* t = wf->add_nodes();
  t->set_id("t");
  t->set_type("manual-trigger");
  v1::Node* x = wf->add_nodes();
  x->set_id("x");
  x->set_name("Target");
  x->set_type("noop");
  v1::Connection* c = wf->add_connections();
  c->set_source_node_id("t");
  c->set_target_node_id("x");
  r.set_workspace_id("ws-a");
  return r;
}

struct GrpcRow {
  const char* name;
  std::function<void(v1::ExecuteWorkflowRequest&)> mutate;  // of SmallRequest()
  grpc::StatusCode code;
  const char* says;
};
void PrintTo(const GrpcRow& row, std::ostream* os) { *os << row.name; }

std::vector<GrpcRow> GrpcRows() {
  using grpc::StatusCode;
  return {
      {"NoWorkflow", [](auto& r) { r.clear_workflow(); }, StatusCode::INVALID_ARGUMENT,
       "workflow is required"},
      {"NoNodes", [](auto& r) { r.mutable_workflow()->clear_nodes(); },
       StatusCode::INVALID_ARGUMENT, "workflow.nodes is empty"},
      {"PriorityOutOfRange", [](auto& r) { r.set_priority(5000); }, StatusCode::INVALID_ARGUMENT,
       "priority: 5000 is outside -1000..1000"},
      {"RequestIdTooLong", [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       StatusCode::INVALID_ARGUMENT, "request_id: longer than 128 characters"},
      {"QueueNameHostile", [](auto& r) { r.set_queue("a b}{c"); }, StatusCode::INVALID_ARGUMENT,
       "queue: \"a b}{c\" is not"},
      {"QueueNameTooLong", [](auto& r) { r.set_queue(std::string(65, 'q')); },
       StatusCode::INVALID_ARGUMENT, "queue: longer than 64 characters"},
      {"MaxAttemptsZero", [](auto& r) { r.set_max_attempts(0); }, StatusCode::INVALID_ARGUMENT,
       "max_attempts 0 is outside 1..100"},
      {"WorkspaceWithASpace", [](auto& r) { r.set_workspace_id("ws a"); },
       StatusCode::INVALID_ARGUMENT, "workspace contains a space"},
      {"TimeoutNegative", [](auto& r) { r.mutable_timeout()->set_seconds(-5); },
       StatusCode::INVALID_ARGUMENT, "timeout: negative"},
      {"StartAtInTenYears",
       [](auto& r) {
         r.mutable_start_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 10 * 365 * 86400);
       },
       StatusCode::INVALID_ARGUMENT, "start_at: later than the state TTL"},
      {"ParametersNotJson",
       [](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_parameters_json("{oops"); },
       StatusCode::INVALID_ARGUMENT, "node \"Target\" (x): parameters_json is not valid JSON"},
      {"ParametersNested10000Deep",
       [](auto& r) {
         r.mutable_workflow()->mutable_nodes(1)->set_parameters_json(
             absl::StrCat("{\"p\":", Nested(10000), "}"));
       },
       StatusCode::INVALID_ARGUMENT,
       "node \"Target\" (x): parameters_json: JSON nested deeper than 1000 levels"},
      {"TriggerDataNested2MillionDeep", [](auto& r) { r.set_trigger_data_json(Nested(2000000)); },
       StatusCode::INVALID_ARGUMENT, "trigger_data_json: JSON nested deeper than 1000 levels"},
      {"JobDataOverTheLimit",
       [](auto& r) {
         r.set_trigger_data_json(Json{{"blob", std::string(2 << 20, 'x')}}.dump());
       },
       StatusCode::RESOURCE_EXHAUSTED, "the limit is 1048576 bytes (NDX_MAX_JOB_BYTES)"},
      {"UnknownTrigger", [](auto& r) { r.set_trigger_node_id("ghost"); },
       StatusCode::INVALID_ARGUMENT, "trigger_node_id: node \"ghost\" does not exist"},
      {"InvalidUtf8InANodeName",
       [](auto& r) { r.mutable_workflow()->mutable_nodes(1)->set_name("bad \xff\xfe name"); },
       // proto3 strings are UTF-8: gRPC refuses to parse the message (its answer to a request it
       // cannot parse is UNIMPLEMENTED), before any ndx code runs.
       StatusCode::UNIMPLEMENTED, ""},
      {"HundredThousandNodes",
       [](auto& r) {
         for (int i = 0; i < 100000; ++i) {
           v1::Node* n = r.mutable_workflow()->add_nodes();
           n->set_id(absl::StrCat("n", i));
           n->set_type("noop");
         }
       },
       StatusCode::INVALID_ARGUMENT, "100002 nodes; at most 5000"},
      {"SixtyThousandConnections",
       [](auto& r) {
         for (int i = 0; i < 60000; ++i)
           *r.mutable_workflow()->add_connections() = r.workflow().connections(0);
       },
       StatusCode::INVALID_ARGUMENT, "60001 connections; at most 50000"},
      {"MillionConnections",
       [](auto& r) {
         for (int i = 0; i < 1000000; ++i)
           *r.mutable_workflow()->add_connections() = r.workflow().connections(0);
       },
       StatusCode::RESOURCE_EXHAUSTED, "larger than max"},
  };
}

class GrpcTable : public BadInputTest, public ::testing::WithParamInterface<GrpcRow> {};

TEST_P(GrpcTable, ExecuteWorkflowClearErrorAndNothingLeftBehind) {
  const GrpcRow& row = GetParam();
  v1::ExecuteWorkflowRequest req = SmallRequest();
  row.mutate(req);
  const Snapshot before = suite->Take();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ExecuteWorkflowResponse resp;
  const absl::Time start = absl::Now();
  const grpc::Status s = suite->queue_stub->ExecuteWorkflow(&ctx, req, &resp);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "slow to refuse";
  EXPECT_EQ(s.error_code(), row.code) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(row.says));
  EXPECT_TRUE(resp.execution_id().empty());
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

INSTANTIATE_TEST_SUITE_P(Rows, GrpcTable, ::testing::ValuesIn(GrpcRows()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(BadInputTest, GrpcReadsWithBadArguments) {
  const Snapshot before = suite->Take();
  auto get = [](const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetExecutionRequest req;
    req.set_execution_id(id);
    v1::Execution e;
    return suite->queue_stub->GetExecution(&ctx, req, &e);
  };
  EXPECT_EQ(get("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get(std::string(10000, 'i')).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get("a b\n*").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get("00000000-0000-4000-8000-000000000000").error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext ctx;
    v1::ListExecutionsRequest req;
    req.set_page_size(-1);
    v1::ListExecutionsResponse resp;
    const grpc::Status s = suite->queue_stub->ListExecutions(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("page_size"));
  }
  {
    grpc::ClientContext ctx;
    v1::RetryExecutionRequest req;
    req.set_execution_id("00000000-0000-4000-8000-000000000000");
    v1::Execution e;
    EXPECT_EQ(suite->queue_stub->RetryExecution(&ctx, req, &e).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::SubscribeRequest req;  // no selector
    auto reader = suite->events_stub->Subscribe(&ctx, req);
    v1::ExecutionEvent ev;
    EXPECT_FALSE(reader->Read(&ev));
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("one of execution_id, workflow_id or all"));
  }
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

// ---------------------------------------------------------------------------------------------
// Socket.IO: raw Engine.IO / Socket.IO packets on an authenticated connection. After each row the
// same connection still answers a well-formed request (unless the row closes it), and the gateway
// is healthy.
// ---------------------------------------------------------------------------------------------

struct SocketIoRow {
  const char* name;
  std::function<std::string()> frame;
  const char* reply_prefix;  // the frame the gateway answers with ("" = none expected)
  const char* says;          // a substring of that reply
  bool closes = false;       // the gateway closes the connection (WebSocket protocol errors)
  bool binary = false;
};
void PrintTo(const SocketIoRow& row, std::ostream* os) { *os << row.name; }

std::vector<SocketIoRow> SocketIoRows() {
  return {
      {"EmptyMessage", [] { return std::string("4"); }, "", ""},
      {"EventWithoutData", [] { return std::string("42"); }, "", ""},
      {"UnknownEngineIoType", [] { return std::string("9xyz"); }, "", ""},
      {"InvalidJsonNoAck", [] { return std::string("42[\"subscribe-execution\""); }, "", ""},
      {"InvalidJsonWithAck", [] { return std::string("4211[\"subscribe-execution\""); }, "4311",
       "packet: data is not valid JSON"},
      {"Nested10000Deep",
       [] { return absl::StrCat("4212[\"start-workflow-execution\",", Nested(10000), "]"); },
       "4312", "packet: JSON nested deeper than 1000 levels"},
      {"StartNestedToTheFrameLimit",
       [] {
         return absl::StrCat(R"(4213["start-workflow-execution",{"workflowId":"w","triggerData":)",
                             Nested(500000), "}]");
       },
       "4313", "JSON nested deeper than 1000 levels"},
      {"DataNotAnArray", [] { return std::string("42{\"subscribe-execution\":1}"); }, "", ""},
      {"EventNameNotAString", [] { return std::string("4214[5,\"x\"]"); }, "", ""},
      {"UnknownEvent", [] { return std::string("4215[\"rm -rf\",{}]"); }, "4315",
       "unknown event \"rm -rf\""},
      {"StartWithWrongTypes",
       [] { return std::string(R"(4216["start-workflow-execution",{"workflowId":5}])"); }, "4316",
       "workflowId: must be a string"},
      {"StartWithUnknownNodeType",
       [] {
         return absl::StrCat(
             "4217", Json::array({"start-workflow-execution",
                                  {{"workflowId", "w"},
                                   {"workflowData", TriggerThen(Node("x", "rm-rf", {}, "Evil"))}}})
                         .dump());
       },
       "4317", "\"Evil\" (x): unknown node type \"rm-rf\""},
      {"SubscribeWithoutId", [] { return std::string(R"(4218["subscribe-execution",{}])"); },
       "4318", "executionId is required"},
      {"AckIdOverflow",
       [] { return std::string(R"(4299999999999999999999999["subscribe-workflow","w"])"); }, "",
       ""},
      {"BinaryEvent", [] { return std::string(R"(451-["x",{"_placeholder":true,"num":0}])"); },
       "44", "binary packets are not supported"},
      {"OtherNamespace", [] { return std::string(R"(42/admin,["x"])"); }, "44/admin,",
       "Invalid namespace"},
      {"BinaryFrame", [] { return std::string("\x00\x01\x02\xff", 4); }, "", "", false, true},
      {"InvalidUtf8TextFrame", [] { return std::string("42[\"\xff\xfe\"]"); }, "", "", true},
      {"FrameOverTheLimit",
       [] { return absl::StrCat("42[\"x\",\"", std::string((1 << 20) + 1, 'a'), "\"]"); }, "", "",
       true},
  };
}

// Opens a Socket.IO connection and CONNECTs with `token`; returns false when refused.
bool SocketIoConnect(WsClient& c, const std::string& token) {
  if (c.Connect(suite->gateway_port, "/socket.io/?EIO=4&transport=websocket") != 101) return false;
  if (!c.ReadUntil("0{")) return false;
  c.SendText(absl::StrCat("40", Json{{"token", token}}.dump()));
  return c.ReadUntil("4").has_value() && absl::StartsWith(c.seen().back(), "40");
}

// A well-formed request with an ack: the connection still works.
void ExpectSocketIoAnswers(WsClient& c) {
  c.SendText(R"(42900["subscribe-workflow","probe"])");
  std::optional<std::string> ack = c.ReadUntil("43900");
  ASSERT_TRUE(ack) << "no ack on the same connection; frames: "
                   << ::testing::PrintToString(c.seen());
  EXPECT_THAT(*ack, HasSubstr("\"success\":true"));
}

class SocketIoTable : public BadInputTest, public ::testing::WithParamInterface<SocketIoRow> {};

TEST_P(SocketIoTable, ClearErrorOrIgnoredAndTheConnectionLives) {
  const SocketIoRow& row = GetParam();
  const Snapshot before = suite->Take();
  WsClient c;
  ASSERT_TRUE(SocketIoConnect(c, TokenA())) << ::testing::PrintToString(c.seen());
  const bool sent = row.binary ? c.SendBinary(row.frame()) : c.SendText(row.frame());
  if (!row.closes) {
    ASSERT_TRUE(sent);  // (a frame too big may be cut off while it is written)
  }
  if (row.closes) {
    // A WebSocket protocol error (invalid UTF-8 in a text frame: 1007; too big: 1009).
    EXPECT_FALSE(c.ReadUntil("43")) << "the connection stayed open";
    EXPECT_FALSE(c.open());
  } else {
    if (*row.reply_prefix != '\0') {
      std::optional<std::string> reply = c.ReadUntil(row.reply_prefix);
      ASSERT_TRUE(reply) << ::testing::PrintToString(c.seen());
      // An ack is [{success: false, error, code}]; a CONNECT_ERROR is {message}.
      Json data = Json::parse(reply->substr(strlen(row.reply_prefix)), nullptr, false);
      if (data.is_array() && !data.empty()) data = data[0];
      ASSERT_TRUE(data.is_object()) << *reply;
      if (data.contains("success")) {
        EXPECT_EQ(data["success"], false) << *reply;
      }
      const Json& text = data.contains("error") ? data["error"] : data["message"];
      ASSERT_TRUE(text.is_string()) << *reply;
      EXPECT_THAT(text.get<std::string>(), HasSubstr(row.says));
    }
    ExpectSocketIoAnswers(c);
  }
  c.Close();
  // A new connection works.
  WsClient again;
  ASSERT_TRUE(SocketIoConnect(again, TokenA()));
  ExpectSocketIoAnswers(again);
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

INSTANTIATE_TEST_SUITE_P(Rows, SocketIoTable, ::testing::ValuesIn(SocketIoRows()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(BadInputTest, SocketIoBadTokensAndEventsBeforeConnect) {
  const Snapshot before = suite->Take();
  for (const std::string& token :
       {Jwt(Claims("ws-a"), "not-the-secret"), Jwt(Claims("ws-a", -3600)),
        absl::StrCat(B64(R"({"alg":"none"})"), ".", B64(Claims("ws-a").dump()), "."),
        std::string("\xff\xfe"), std::string(100000, 't'), std::string()}) {
    SCOPED_TRACE(token.substr(0, 40));
    WsClient c;
    ASSERT_EQ(c.Connect(suite->gateway_port, "/socket.io/?EIO=4&transport=websocket"), 101);
    ASSERT_TRUE(c.ReadUntil("0{"));
    // Before CONNECT, events are ignored: nothing starts.
    c.SendText(absl::StrCat("421", Json::array({"start-workflow-execution",
                                                {{"workflowId", "w"},
                                                 {"workflowData", TriggerThen(Node("x", "noop"))}}})
                                       .dump()));
    // Text frames must be UTF-8: invalid bytes arrive as U+FFFD.
    c.SendText(absl::StrCat(
        "40", Json{{"token", token}}.dump(-1, ' ', false, Json::error_handler_t::replace)));
    std::optional<std::string> refusal = c.ReadUntil("4");
    ASSERT_TRUE(refusal) << ::testing::PrintToString(c.seen());
    EXPECT_TRUE(absl::StartsWith(*refusal, "44")) << *refusal;
    const Json m = Json::parse(refusal->substr(2), nullptr, false);
    EXPECT_THAT(m["message"].get<std::string>(),
                ::testing::AnyOf(HasSubstr("Invalid authentication token"),
                                 HasSubstr("Session expired"), HasSubstr("token required")));
  }
  // The plain WebSocket refuses the upgrade with 401 and the envelope.
  for (const std::string& authorization :
       {absl::StrCat("Authorization: Bearer ", Jwt(Claims("ws-a"), "forged!"), "\r\n"),
        std::string()}) {
    const std::string upgrade = absl::StrCat(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        authorization, "\r\n");
    std::vector<HttpReply> r = testing::HttpExchange(suite->gateway_port, {upgrade});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status, 401) << r[0].body;
    EXPECT_THAT(r[0].body, HasSubstr("\"code\":\"UNAUTHORIZED\""));
  }
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

TEST_F(BadInputTest, PlainWebSocketFrames) {
  const Snapshot before = suite->Take();
  WsClient ws;
  ASSERT_EQ(ws.Connect(suite->gateway_port, "/ws", "Bearer " + TokenA()), 101);
  ASSERT_TRUE(ws.Read());  // welcome
  struct Case {
    std::string frame;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"not json", "INVALID_ARGUMENT", "frames are JSON objects"},
      {"[1,2]", "INVALID_ARGUMENT", "frames are JSON objects"},
      {R"({"type":5})", "INVALID_ARGUMENT", "string \"type\""},
      {Nested(10000), "INVALID_ARGUMENT", "frame: JSON nested deeper than 1000 levels"},
      {R"({"type":"rm -rf"})", "INVALID_ARGUMENT", "type: unknown frame type \"rm -rf\""},
      {R"({"type":"subscribe","executionId":"x","afterSeq":-1})", "INVALID_ARGUMENT",
       "afterSeq: must be an integer >= 0"},
      {R"({"type":"subscribe","afterSeq":"0"})", "INVALID_ARGUMENT", "afterSeq"},
      {R"({"type":"subscribe"})", "INVALID_ARGUMENT", "executionId is required"},
      {R"({"type":"subscribe-workflow"})", "INVALID_ARGUMENT", "workflowId: required"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.frame.substr(0, 60));
    ASSERT_TRUE(ws.SendText(c.frame));
    std::optional<std::string> reply = ws.ReadUntil("{");
    ASSERT_TRUE(reply);
    const Json j = Json::parse(*reply);
    EXPECT_EQ(j["type"], "error") << *reply;
    EXPECT_EQ(j["code"], c.code) << *reply;
    EXPECT_THAT(j["message"].get<std::string>(), HasSubstr(c.says));
  }
  ws.SendText(R"({"type":"ping","id":7})");
  std::optional<std::string> pong = ws.ReadUntil("{");
  ASSERT_TRUE(pong);
  EXPECT_THAT(*pong, HasSubstr("pong"));
  // Invalid UTF-8 in a text frame is a protocol error: the connection closes, the gateway lives.
  ws.SendText("{\"type\":\"\xff\"}");
  EXPECT_FALSE(ws.ReadUntil("{"));
  suite->ExpectNothingLeft(before);
  suite->ExpectAlive();
}

// ---------------------------------------------------------------------------------------------
// Hostile code: accepted executions that must fail cleanly, naming the node, within the time cap,
// with the worker alive and its slots free.
// ---------------------------------------------------------------------------------------------

struct CodeRow {
  const char* name;
  Json node;           // id "x"
  const char* says;    // a substring of the execution's error message
  absl::Duration cap;  // from start to the failed state
};
void PrintTo(const CodeRow& row, std::ostream* os) { *os << row.name; }

Json Code(const std::string& code, int timeout_ms = 0) {
  Json p = {{"language", "javascript"}, {"code", code}};
  if (timeout_ms > 0) p["timeout"] = timeout_ms;
  return Node("x", "code", p, "Hostile Code");
}

Json SetWith(const std::string& expression) {
  Json n = Node("x", "set",
                {{"values", Json::array({{{"keyValue", {{"key", "v"}, {"value", expression}}}}})}},
                "Hostile Set");
  n["settings"] = {{"timeout", 1000}};
  return n;
}

std::vector<CodeRow> CodeRows() {
  const absl::Duration cap = absl::Seconds(15);
  return {
      {"LoopsForever", Code("while (true) {}", 1000), "ran longer than its time limit of 1s", cap},
      {"CatastrophicRegex",
       Code("return [{json: {m: /^(a+)+$/.test('a'.repeat(40) + 'b')}}]", 1000),
       "ran longer than its time limit of 1s", cap},
      {"AllocatesWithoutBound", Code("const a = []; for (;;) a.push(new Array(1e6).fill(7));"),
       "more than its memory limit of 64 MiB", cap},
      {"StringDoubling", Code("let s = 'x'; for (;;) s += s;"), "allocation size overflow", cap},
      {"InfiniteRecursion", Code("function f() { return f() + 1; } return f();"),
       "too much recursion", cap},
      {"Require",
       Code("const fs = require('fs'); return [{json: {x: fs.readFileSync('/etc/passwd')}}];"),
       "require is not defined", cap},
      {"Process", Code("process.exit(1);"), "process is not defined", cap},
      {"DynamicImport", Code("const m = await import('fs'); return [{json: {}}];"),
       "Dynamic module import is disabled", cap},
      {"EvalEscape",
       Code(
           "const g = (0, eval)('this'); return [{json: {x: g.process.mainModule.require('x')}}];"),
       "g.process is undefined", cap},
      {"ConstructorEscape",
       Code("return [{json: {x: this.constructor.constructor('return process')().pid}}];"),
       "process is not defined", cap},
      {"FunctionEscape", Code("return [{json: {x: Function('return process')().env}}];"),
       "process is not defined", cap},
      {"NeverSettles", Code("await new Promise(() => {}); return [];"), "Promise never settled",
       cap},
      {"ReturnsACycle", Code("const o = {}; o.o = o; return [{json: o}];"), "it contains a cycle",
       cap},
      {"ReturnsTooMuch", Code("return [{json: {s: 'x'.repeat(20 * 1024 * 1024)}}];"),
       "larger than the limit of 16777216 bytes", cap},
      {"SyntaxError", Code("return [{json: {a: }}];"), "SyntaxError", cap},
      {"Throws", Code("throw new Error('boom');"), "boom", cap},
      {"JsonNodeBuildsText500000Deep",
       Node("x", "json",
            {{"mode", "json"}, {"jsonData", "{{ '['.repeat(500000) + ']'.repeat(500000) }}"}},
            "Hostile JSON"),
       "Invalid JSON data", cap},
      {"ExpressionThrows", SetWith("{{ (() => { throw new Error('kaboom') })() }}"), "kaboom", cap},
      {"ExpressionLoopsForever", SetWith("{{ (() => { while (true) {} })() }}"), "", cap},
      {"ExpressionRequire", SetWith("{{ require('child_process') }}"), "require", cap},
      {"ExpressionProcess", SetWith("{{ $json.constructor.constructor('return process')() }}"),
       "process", cap},
  };
}

// Starts `workflow` over REST and waits for a terminal status; the execution's REST JSON.
Json RunToEnd(const Json& workflow, absl::Duration cap, absl::Duration* took = nullptr) {
  const absl::Time start = absl::Now();
  const HttpReply r = testing::HttpCall(suite->gateway_port, "POST", "/api/executions", TokenA(),
                                        StartBody(workflow, "wf-hostile"));
  EXPECT_EQ(r.status, 201) << r.body;
  if (r.status != 201) return Json();
  const std::string id = Json::parse(r.body)["data"]["executionId"];
  Json last;
  WaitUntil(
      [&] {
        const HttpReply g =
            testing::HttpCall(suite->gateway_port, "GET", "/api/executions/" + id, TokenA());
        last = Json::parse(g.body, nullptr, false);
        return g.status == 200 && last["data"]["status"] != "RUNNING";
      },
      cap, absl::Milliseconds(50));
  if (took != nullptr) *took = absl::Now() - start;
  return last.is_object() ? last["data"] : Json();
}

// The worker is healthy and idle: gRPC health SERVING, no busy slot, nothing active in the queue.
void ExpectWorkerIdle() {
  EXPECT_TRUE(WaitUntil(
      [] {
        absl::StatusOr<testing::HttpResult> m =
            testing::HttpGet(suite->worker_metrics_port, "/metrics");
        return m.ok() && absl::StrContains(m->body, "ndx_worker_slots_busy 0");
      },
      absl::Seconds(10)))
      << "a worker slot stayed busy";
  const Snapshot s = suite->Take();
  EXPECT_EQ(s.stats.at("default.active"), 0);
  EXPECT_EQ(s.stats.at("default.waiting"), 0);
}

class CodeTable : public BadInputTest, public ::testing::WithParamInterface<CodeRow> {};

TEST_P(CodeTable, FailsCleanlyNamingTheNodeAndTheWorkerLives) {
  const CodeRow& row = GetParam();
  absl::Duration took;
  const Json e = RunToEnd(TriggerThen(row.node), row.cap, &took);
  ASSERT_TRUE(e.is_object());
  EXPECT_EQ(e["status"], "ERROR") << e.dump();
  EXPECT_LT(took, row.cap);
  EXPECT_EQ(e["error"]["nodeId"], "x") << e.dump();
  const std::string message =
      e["error"]["message"].is_string() ? e["error"]["message"].get<std::string>() : "";
  EXPECT_EQ(e["error"]["nodeName"], row.node["name"]) << e.dump();
  EXPECT_THAT(message, HasSubstr(row.says)) << e.dump();
  // The failed node run is recorded as such.
  bool node_failed = false;
  for (const Json& n : e["nodeExecutions"]) {
    if (n["nodeId"] == "x") node_failed = n["status"] == "ERROR";
  }
  EXPECT_TRUE(node_failed) << e.dump();
  ExpectWorkerIdle();
  suite->ExpectAlive();
}

INSTANTIATE_TEST_SUITE_P(Rows, CodeTable, ::testing::ValuesIn(CodeRows()),
                         [](const auto& info) { return std::string(info.param.name); });

// A hostile HTTP server for http-request nodes: answers every request with `body` as JSON.
class JsonServer {
 public:
  explicit JsonServer(std::string body) : body_(std::move(body)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // closed by the destructor
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = recv(c, buf, sizeof(buf), 0);
          if (n <= 0) break;
          request.append(buf, n);
        }
        const std::string response = absl::StrCat(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", body_.size(),
            "\r\nConnection: close\r\n\r\n", body_);
        for (size_t sent = 0; sent < response.size();) {
          const ssize_t n = send(c, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
        close(c);
      }
    });
  }
  ~JsonServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  const std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(BadInputTest, AServersJsonNestedTooDeepStaysText) {
  // 500,000 levels: parsed, the checkpoint's dump() would overflow the worker's stack.
  JsonServer server(Nested(500000));
  const Json e = RunToEnd(
      TriggerThen(Node(
          "x", "http-request",
          {{"method", "GET"}, {"url", absl::StrCat("http://127.0.0.1:", server.port(), "/deep")}},
          "Fetch")),
      absl::Seconds(30));
  EXPECT_EQ(e["status"], "SUCCESS") << e.dump().substr(0, 2000);
  ExpectWorkerIdle();
  suite->ExpectAlive();
}

TEST_F(BadInputTest, PrototypePollutionDoesNotOutliveItsRun) {
  // A Code node pollutes the built-ins and succeeds; the next run sees clean built-ins.
  const Json polluter =
      RunToEnd(TriggerThen(Code("Object.prototype.polluted = 'yes'; Array.prototype.map = null; "
                                "JSON.stringify = () => 'owned'; return [{json: {done: true}}];")),
               absl::Seconds(15));
  EXPECT_EQ(polluter["status"], "SUCCESS") << polluter.dump();
  const Json victim =
      RunToEnd(TriggerThen(Code("return [{json: {polluted: ({}).polluted ?? null, "
                                "map: typeof [].map, json: JSON.stringify({a: 1})}}];")),
               absl::Seconds(15));
  ASSERT_EQ(victim["status"], "SUCCESS") << victim.dump();
  const std::string out = victim.dump();
  EXPECT_THAT(out, HasSubstr(R"("polluted":null)"));
  EXPECT_THAT(out, HasSubstr(R"("map":"function")"));
  EXPECT_THAT(out, HasSubstr(R"("json":"{\"a\":1}")"));
  // Expressions share one frozen global per sandbox: an assignment cannot leave state behind.
  const Json expr =
      RunToEnd(TriggerThen(SetWith("{{ (Object.prototype.leak = 'yes', 1) }}")), absl::Seconds(15));
  const Json after =
      RunToEnd(TriggerThen(SetWith("{{ ({}).leak ?? 'clean' }}")), absl::Seconds(15));
  ASSERT_EQ(after["status"], "SUCCESS") << after.dump() << expr.dump();
  EXPECT_THAT(after.dump(), HasSubstr(R"("v":"clean")"));
  ExpectWorkerIdle();
  suite->ExpectAlive();
}

}  // namespace
}  // namespace ndx
