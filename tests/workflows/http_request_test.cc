// http-request node tests against the loopback server (real HttpClient): fullResponse shape,
// continueOnFail error items, node retries on 5xx, node timeouts, cancellation of a transfer in
// flight.
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/engine.h"
#include "libs/engine/engine_testing.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "tests/testing/status_matchers.h"
#include "tests/workflows/loopback_server.h"

namespace ndx::engine {
namespace {

using ::ndx::engine::testing::LoopbackServer;
using ::ndx::engine::testing::RecordingObserver;
using ::ndx::testing::IsOk;
using ::testing::HasSubstr;

class HttpRequestNodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitHttpClient(); }
  void SetUp() override { RegisterBuiltinNodes(registry_); }

  // trigger -> h (http-request with `params` and `settings`).
  Workflow Make(Json params, Json settings = Json::object()) {
    Json wf = {{"nodes",
                {{{"id", "t"}, {"name", "T"}, {"type", "manual-trigger"}},
                 {{"id", "h"},
                  {"name", "HTTP"},
                  {"type", "http-request"},
                  {"parameters", std::move(params)},
                  {"settings", std::move(settings)}}}},
               {"connections", {{{"id", "c1"}, {"sourceNodeId", "t"}, {"targetNodeId", "h"}}}}};
    absl::StatusOr<Workflow> parsed = ParseWorkflow(wf, registry_);
    EXPECT_THAT(parsed, IsOk());
    return *std::move(parsed);
  }

  RunResult Run(const Workflow& wf, RecordingObserver& observer,
                const CancellationToken* cancel = nullptr) {
    RunRequest req;
    req.workflow = &wf;
    req.execution = {.execution_id = "e1", .workflow_id = "w1"};
    req.http = &http_;
    req.clock = &clock_;
    req.cancel = cancel;
    return Engine().Run(req, observer);
  }

  NodeRegistry registry_;
  LoopbackServer server_;
  HttpClient http_;
  common::FakeClock clock_;
};

TEST_F(HttpRequestNodeTest, FullResponseShape) {
  Workflow wf = Make({{"url", server_.base_url() + "/json"},
                      {"method", "DELETE"},
                      {"responseFormat", "fullResponse"}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  const Json& item = r.outputs["h"]["main"][0]["json"];
  EXPECT_EQ(item["status"], 200);
  EXPECT_EQ(item["statusText"], "OK");
  EXPECT_EQ(item["ok"], true);
  EXPECT_EQ(item["url"], server_.base_url() + "/json");
  EXPECT_EQ(item["responseTime"], 0);  // FakeClock
  EXPECT_EQ(item["headers"]["content-type"], "application/json; charset=utf-8");
  EXPECT_EQ(item["data"]["method"], "DELETE");
  EXPECT_EQ(item["data"]["headers"]["idempotency-key"], "e1:h");
  std::vector<std::string> keys;
  for (auto it = item.begin(); it != item.end(); ++it) keys.push_back(it.key());
  EXPECT_THAT(keys, ::testing::ElementsAre("status", "statusText", "headers", "data",
                                           "responseTime", "url", "ok"));
}

TEST_F(HttpRequestNodeTest, NoIdempotencyKeyOnGetAndRedirectsFollowed) {
  Workflow wf = Make({{"url", server_.base_url() + "/redirect"}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  const Json& data = r.outputs["h"]["main"][0]["json"];
  EXPECT_EQ(data["path"], "/json");
  EXPECT_FALSE(data["headers"].contains("idempotency-key"));
}

TEST_F(HttpRequestNodeTest, ContinueOnFailGivesNodeDropErrorItemWithStatusCode) {
  const std::string url = server_.base_url() + "/status/404";
  Workflow wf = Make({{"url", url}, {"method", "POST"}}, {{"continueOnFail", true}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  const Json& item = r.outputs["h"]["main"][0]["json"];
  EXPECT_EQ(item["error"], true);
  EXPECT_THAT(item["errorMessage"].get<std::string>(), HasSubstr("HTTP 404 Not Found"));
  EXPECT_EQ(item["errorType"], "CLIENT_ERROR");
  EXPECT_EQ(item["statusCode"], 404);
  EXPECT_EQ(item["url"], url);
  EXPECT_EQ(item["method"], "POST");
  EXPECT_EQ(item["timestamp"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(item["details"]["responseBody"]["status"], 404);
}

TEST_F(HttpRequestNodeTest, AlwaysOutputDataReturnsErrorResponsesAsData) {
  Workflow wf = Make({{"url", server_.base_url() + "/status/500"}}, {{"alwaysOutputData", true}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  EXPECT_EQ(r.outputs["h"]["main"][0]["json"]["status"], 500);
}

TEST_F(HttpRequestNodeTest, RetryOnFailRetriesTransientErrors) {
  Workflow wf = Make({{"url", server_.base_url() + "/flaky/a?fail=2"}},
                     {{"retryOnFail", true}, {"maxRetries", 3}, {"retryDelay", 10}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  EXPECT_EQ(server_.Count("/flaky/a"), 3);
  EXPECT_THAT(obs.events, ::testing::Contains("retrying h 2"));
  EXPECT_THAT(obs.events, ::testing::Contains("retrying h 3"));
  EXPECT_EQ(r.outputs["h"]["main"][0]["json"]["ok"], true);
}

TEST_F(HttpRequestNodeTest, RetriesExhaustedFailTransient) {
  Workflow wf = Make({{"url", server_.base_url() + "/flaky/b?fail=10"}},
                     {{"retryOnFail", true}, {"maxRetries", 1}, {"retryDelay", 1}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_TRUE(r.transient);
  EXPECT_EQ(r.failed_node_id, "h");
  EXPECT_EQ(server_.Count("/flaky/b"), 2);
  ASSERT_EQ(obs.failures.size(), 1u);
  EXPECT_EQ(obs.failures[0]["code"], "UNAVAILABLE");
  EXPECT_EQ(obs.failures[0]["nodeId"], "h");
  EXPECT_EQ(obs.failures[0]["transient"], true);
}

TEST_F(HttpRequestNodeTest, PermanentErrorsAreNotRetried) {
  Workflow wf = Make({{"url", server_.base_url() + "/status/400"}},
                     {{"retryOnFail", true}, {"maxRetries", 3}, {"retryDelay", 1}});
  RecordingObserver obs;
  RunResult r = Run(wf, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_FALSE(r.transient);
  EXPECT_EQ(server_.Count("/status/400"), 1);
}

TEST_F(HttpRequestNodeTest, TimeoutParameterIsTransientDeadlineExceeded) {
  Workflow wf = Make({{"url", server_.base_url() + "/slow?ms=2000"}, {"timeout", 100}});
  RecordingObserver obs;
  const absl::Time start = absl::Now();
  RunResult r = Run(wf, obs);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1.5));
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(r.transient);
}

TEST_F(HttpRequestNodeTest, CancellationAbortsTransferInFlight) {
  Workflow wf = Make({{"url", server_.base_url() + "/slow?ms=5000"}});
  CancellationToken token;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    token.Cancel(absl::CancelledError("user cancelled"));
  });
  RecordingObserver obs;
  const absl::Time start = absl::Now();
  RunResult r = Run(wf, obs, &token);
  canceller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(r.outcome, RunOutcome::kCancelled);
  EXPECT_EQ(r.failed_node_id, "h");
  EXPECT_THAT(obs.events, ::testing::Not(::testing::Contains(HasSubstr("failed"))));
}

TEST_F(HttpRequestNodeTest, ResponseSizeCapIsResourceExhausted) {
  Workflow wf = Make({{"url", server_.base_url() + "/json"}});
  RunRequest req;
  req.workflow = &wf;
  req.http = &http_;
  req.clock = &clock_;
  EngineOptions options;
  options.max_http_response_bytes = 10;
  RecordingObserver obs;
  RunResult r = Engine(options).Run(req, obs);
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_EQ(r.error.code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace ndx::engine
