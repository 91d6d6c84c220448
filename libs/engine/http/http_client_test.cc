#include "libs/engine/http/http_client.h"

#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/engine/cancellation.h"
#include "libs/engine/errors.h"
#include "libs/engine/http/test_http_server.h"
#include "tests/testing/child_process.h"
#include "tests/testing/status_matchers.h"

namespace ndx::engine {
namespace {

using ::ndx::engine::testing::TestHttpServer;
using ::ndx::testing::FreePort;
using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::ndx::testing::WaitUntil;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

constexpr absl::Duration kWait = absl::Seconds(10);

// All values of response header `name` (already lower-case in the response).
std::vector<std::string> HeaderValues(const HttpClientResponse& response, const std::string& name) {
  std::vector<std::string> values;
  for (const auto& [n, v] : response.headers) {
    if (n == name) values.push_back(v);
  }
  return values;
}

// The first value of response header `name`, or "<absent>".
std::string Header(const HttpClientResponse& response, const std::string& name) {
  std::vector<std::string> values = HeaderValues(response, name);
  return values.empty() ? "<absent>" : values.front();
}

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitHttpClient(); }
  void SetUp() override { ASSERT_THAT(server_.Start(), IsOk()); }

  HttpClientRequest Get(const std::string& path) {
    HttpClientRequest request;
    request.url = server_.Url(path);
    return request;
  }

  // Runs `request` on its own thread, waits until `started` holds, cancels the token and returns
  // how long Perform() took to return after Cancel(). The result goes to `*result`.
  absl::Duration CancelWhen(const HttpClientRequest& request, const std::function<bool()>& started,
                            absl::StatusOr<HttpClientResponse>* result) {
    CancellationToken token;
    absl::Notification done;
    absl::Time done_at;
    std::thread worker([&] {
      *result = client_.Perform(request, &token);
      done_at = absl::Now();
      done.Notify();
    });
    const bool reached = WaitUntil(started, kWait, absl::Milliseconds(1));
    const absl::Time cancel_at = absl::Now();
    token.Cancel(absl::CancelledError("execution cancelled by user"));
    const bool finished = done.WaitForNotificationWithTimeout(kWait);
    worker.join();
    EXPECT_TRUE(reached);
    EXPECT_TRUE(finished);
    return done_at - cancel_at;
  }

  TestHttpServer server_;
  HttpClient client_;
};

TEST_F(HttpClientTest, ReturnsEveryStatusAsAResponse) {
  for (const auto& [code, text] : std::vector<std::pair<int, std::string>>{
           {200, "OK"}, {404, "Not Found"}, {500, "Internal Server Error"}}) {
    absl::StatusOr<HttpClientResponse> response =
        client_.Perform(Get(absl::StrCat("/status/", code)), nullptr);
    ASSERT_THAT(response, IsOk()) << code;
    EXPECT_EQ(response->status, code);
    EXPECT_EQ(response->status_text, text);
    EXPECT_EQ(response->body, absl::StrCat("status ", code));
    EXPECT_EQ(response->final_url, server_.Url(absl::StrCat("/status/", code)));
    EXPECT_EQ(Header(*response, "content-length"), std::to_string(response->body.size()));
  }
  EXPECT_EQ(server_.TotalRequests(), 3);
}

TEST_F(HttpClientTest, ReportsTheServersReasonPhrase) {
  absl::StatusOr<HttpClientResponse> response =
      client_.Perform(Get("/status/299?reason=Fine%20Thanks"), nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 299);
  EXPECT_EQ(response->status_text, "Fine Thanks");
}

TEST_F(HttpClientTest, LowerCasesHeaderNamesAndKeepsRepeatedHeaders) {
  absl::StatusOr<HttpClientResponse> response = client_.Perform(Get("/headers"), nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_THAT(response->headers, Contains(Pair("x-mixed-case", "Value")));
  EXPECT_THAT(HeaderValues(*response, "set-cookie"), ElementsAre("a=1", "b=2"));
  for (const auto& [name, value] : response->headers) {
    EXPECT_EQ(name, absl::AsciiStrToLower(name));
  }
}

TEST_F(HttpClientTest, EchoesMethodHeadersAndBody) {
  HttpClientRequest request = Get("/echo?x=1");
  request.method = "POST";
  request.body = R"({"hello":"world"})";
  request.headers = {{"Content-Type", "application/json"},
                     {"Authorization", "Bearer s3cr3t"},
                     {"Idempotency-Key", "exec-1-node-3"},
                     {"X-Empty", ""}};
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, request.body);
  EXPECT_EQ(Header(*response, "x-echo-method"), "POST");
  EXPECT_EQ(Header(*response, "x-echo-target"), "/echo?x=1");
  EXPECT_EQ(Header(*response, "x-echo-header-content-type"), "application/json");
  EXPECT_EQ(Header(*response, "x-echo-header-authorization"), "Bearer s3cr3t");
  EXPECT_EQ(Header(*response, "x-echo-header-idempotency-key"), "exec-1-node-3");
  EXPECT_EQ(Header(*response, "x-echo-header-x-empty"), "");
  EXPECT_EQ(Header(*response, "x-echo-header-user-agent"), "ndx");

  const std::vector<TestHttpServer::Request> seen = server_.Requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].body, request.body);
  EXPECT_EQ(seen[0].Header("Content-Length"), std::to_string(request.body.size()));
}

TEST_F(HttpClientTest, SendsTheBodyForPutPatchAndDelete) {
  for (const std::string method : {"PUT", "PATCH", "DELETE"}) {
    HttpClientRequest request = Get("/echo");
    request.method = method;
    request.body = absl::StrCat("body of ", method);
    request.headers = {{"Content-Type", "text/plain"}};
    absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
    ASSERT_THAT(response, IsOk()) << method;
    EXPECT_EQ(Header(*response, "x-echo-method"), method);
    EXPECT_EQ(response->body, request.body);
  }
}

TEST_F(HttpClientTest, EmptyPutSendsContentLengthZeroAndEmptyDeleteSendsNoBody) {
  HttpClientRequest put = Get("/echo");
  put.method = "PUT";
  ASSERT_THAT(client_.Perform(put, nullptr), IsOk());
  HttpClientRequest del = Get("/echo");
  del.method = "DELETE";
  ASSERT_THAT(client_.Perform(del, nullptr), IsOk());
  const std::vector<TestHttpServer::Request> seen = server_.Requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].Header("Content-Length"), "0");
  EXPECT_FALSE(seen[1].HasHeader("Content-Length"));
  EXPECT_FALSE(seen[1].HasHeader("Content-Type"));
}

TEST_F(HttpClientTest, SendsCustomMethodsUpperCased) {
  for (const auto& [given, sent] : std::vector<std::pair<std::string, std::string>>{
           {"PURGE", "PURGE"}, {"options", "OPTIONS"}, {"Get", "GET"}}) {
    HttpClientRequest request = Get("/echo");
    request.method = given;
    absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
    ASSERT_THAT(response, IsOk()) << given;
    EXPECT_EQ(Header(*response, "x-echo-method"), sent);
  }
}

TEST_F(HttpClientTest, HeadReturnsHeadersWithoutABody) {
  HttpClientRequest request = Get("/huge?bytes=10000000");
  request.method = "HEAD";
  request.max_response_bytes = 1000;  // the announced length is not a body that will come
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->body, IsEmpty());
  EXPECT_EQ(Header(*response, "content-length"), "10000000");
  EXPECT_EQ(server_.Requests().at(0).method, "HEAD");
}

TEST_F(HttpClientTest, AddsNoContentTypeAndNoExpectOfItsOwn) {
  HttpClientRequest request = Get("/echo");
  request.method = "POST";
  request.body = std::string(2 << 20, 'b');  // libcurl would add "Expect: 100-continue" (1 s stall)
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body.size(), request.body.size());
  const TestHttpServer::Request seen = server_.Requests().at(0);
  EXPECT_FALSE(seen.HasHeader("Content-Type"));
  EXPECT_FALSE(seen.HasHeader("Expect"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, DecodesAGzipBody) {
  absl::StatusOr<HttpClientResponse> response = client_.Perform(Get("/gzip"), nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body, "hello, gzip");
  EXPECT_EQ(Header(*response, "content-encoding"), "gzip");
  EXPECT_THAT(server_.Requests().at(0).Header("Accept-Encoding"), HasSubstr("gzip"));
}

TEST_F(HttpClientTest, TimesOutAgainstASlowServerNearTheTimeout) {
  HttpClientRequest request = Get("/slow?ms=20000");
  request.timeout = absl::Milliseconds(500);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 AllOf(HasSubstr(absl::StrCat("GET ", request.url)),
                                       HasSubstr("timed out after 500ms"))));
  EXPECT_TRUE(IsTransient(response.status()));
  EXPECT_GE(elapsed, absl::Milliseconds(480));
  EXPECT_LT(elapsed, absl::Milliseconds(1500));
  std::printf("timeout 500ms ended after %s\n", absl::FormatDuration(elapsed).c_str());
}

TEST_F(HttpClientTest, TheTimeoutCoversASlowBody) {
  HttpClientRequest request = Get("/slow-body?ms=100");  // the whole body would take 99 s
  request.timeout = absl::Milliseconds(700);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("700ms")));
  EXPECT_GE(elapsed, absl::Milliseconds(680));
  EXPECT_LT(elapsed, absl::Milliseconds(1700));
}

TEST_F(HttpClientTest, CancelWhileTheServerIsSilentEndsWithin100ms) {
  HttpClientRequest request = Get("/slow?ms=20000");
  absl::StatusOr<HttpClientResponse> result;
  const absl::Duration latency = CancelWhen(
      request, [&] { return server_.RequestCount("/slow") == 1; }, &result);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kCancelled,
                               AllOf(HasSubstr("cancelled"), HasSubstr("by user"))));
  EXPECT_FALSE(IsTransient(result.status()));
  EXPECT_LT(latency, absl::Milliseconds(100));
  std::printf("cancel latency (silent server): %s\n", absl::FormatDuration(latency).c_str());
  RecordProperty("cancel_latency_silent_us", std::to_string(absl::ToInt64Microseconds(latency)));
}

TEST_F(HttpClientTest, CancelDuringASlowBodyEndsWithin100ms) {
  HttpClientRequest request = Get("/slow-body?ms=200");
  absl::StatusOr<HttpClientResponse> result;
  const absl::Duration latency = CancelWhen(
      request, [&] { return server_.ResponsesStarted("/slow-body") == 1; }, &result);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(latency, absl::Milliseconds(100));
  std::printf("cancel latency (slow body): %s\n", absl::FormatDuration(latency).c_str());
  RecordProperty("cancel_latency_slow_body_us", std::to_string(absl::ToInt64Microseconds(latency)));
}

TEST_F(HttpClientTest, TheThreadStaysUsableAfterACancel) {
  CancellationToken token;
  std::thread worker([&] {
    HttpClientRequest slow = Get("/slow?ms=20000");
    std::thread canceller([&] {
      WaitUntil([&] { return server_.RequestCount("/slow") == 1; }, kWait);
      token.Cancel(absl::CancelledError("stop"));
    });
    EXPECT_THAT(client_.Perform(slow, &token), StatusIs(absl::StatusCode::kCancelled));
    canceller.join();
    absl::StatusOr<HttpClientResponse> next = client_.Perform(Get("/status/200"), nullptr);
    ASSERT_THAT(next, IsOk());
    EXPECT_EQ(next->status, 200);
  });
  worker.join();
}

TEST_F(HttpClientTest, AnAlreadyCancelledTokenSendsNothing) {
  CancellationToken token;
  token.Cancel(absl::CancelledError("lease lost"));
  EXPECT_THAT(client_.Perform(Get("/status/200"), &token),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("lease lost")));
  EXPECT_EQ(server_.Connections(), 0);
}

TEST_F(HttpClientTest, ABodyAnnouncedLargerThanTheCapFailsAtOnce) {
  HttpClientRequest request = Get("/huge?bytes=100000000");
  request.max_response_bytes = 1 << 20;
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kResourceExhausted,
                                 HasSubstr("larger than 1048576 bytes")));
  EXPECT_FALSE(IsTransient(response.status()));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(HttpClientTest, AContentLengthAboveTheCapFailsBeforeAnyOfTheBody) {
  HttpClientRequest request = Get("/huge?bytes=2000000&stall=1");  // headers, then silence
  request.max_response_bytes = 1 << 20;
  request.timeout = absl::Seconds(20);
  const absl::Time start = absl::Now();
  EXPECT_THAT(client_.Perform(request, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("larger than")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(HttpClientTest, AnEndlessBodyIsCutWhenItCrossesTheCap) {
  HttpClientRequest request = Get("/stream?bytes=0");  // chunked, no Content-Length, never ends
  request.max_response_bytes = 1 << 20;
  request.timeout = absl::Seconds(30);
  const absl::Time start = absl::Now();
  EXPECT_THAT(client_.Perform(request, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("larger than")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, EndlessHeadersAreCut) {
  HttpClientRequest request = Get("/endless-headers");
  request.timeout = absl::Seconds(20);
  const absl::Time start = absl::Now();
  EXPECT_THAT(client_.Perform(request, nullptr),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("response headers")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, ABodyExactlyAtTheCapIsAccepted) {
  for (const std::string path : {"/huge?bytes=100000", "/stream?bytes=100000"}) {
    HttpClientRequest request = Get(path);
    request.max_response_bytes = 100000;
    absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
    ASSERT_THAT(response, IsOk()) << path;
    EXPECT_EQ(response->body.size(), 100000u);
    request.max_response_bytes = 99999;
    EXPECT_THAT(client_.Perform(request, nullptr), StatusIs(absl::StatusCode::kResourceExhausted))
        << path;
  }
}

TEST_F(HttpClientTest, AMalformedResponseIsUnavailable) {
  absl::StatusOr<HttpClientResponse> response = client_.Perform(Get("/malformed"), nullptr);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("malformed response")));
  EXPECT_TRUE(IsTransient(response.status()));
}

TEST_F(HttpClientTest, ATruncatedBodyIsUnavailable) {
  EXPECT_THAT(client_.Perform(Get("/truncated"), nullptr),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("closed before")));
}

TEST_F(HttpClientTest, FollowsRedirectsAndReportsTheFinalUrl) {
  absl::StatusOr<HttpClientResponse> response = client_.Perform(Get("/redirect/3"), nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "done");
  EXPECT_EQ(response->final_url, server_.Url("/redirect/0"));
  // Only the final response's headers.
  EXPECT_THAT(HeaderValues(*response, "x-hop"), ElementsAre("0"));
  EXPECT_THAT(HeaderValues(*response, "location"), IsEmpty());
  EXPECT_EQ(server_.TotalRequests(), 4);
  // Keep-alive: all hops on one connection.
  EXPECT_EQ(server_.Connections(), 1);
}

TEST_F(HttpClientTest, ReturnsTheRedirectWhenNotFollowing) {
  HttpClientRequest request = Get("/redirect/3");
  request.follow_redirects = false;
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 302);
  EXPECT_EQ(Header(*response, "location"), "/redirect/2");
  EXPECT_EQ(response->final_url, request.url);
  EXPECT_EQ(server_.TotalRequests(), 1);
}

TEST_F(HttpClientTest, MoreRedirectsThanAllowedIsFailedPrecondition) {
  HttpClientRequest request = Get("/redirect/3");
  request.max_redirects = 2;
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 AllOf(HasSubstr(absl::StrCat("GET ", request.url)),
                                       HasSubstr("stopped after 2 redirects"))));
  EXPECT_FALSE(IsTransient(response.status()));
  EXPECT_EQ(server_.TotalRequests(), 3);
}

TEST_F(HttpClientTest, ARedirectLoopIsFailedPrecondition) {
  HttpClientRequest request = Get("/loop");
  request.headers = {{"Authorization", "Bearer s3cr3t"}};
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  EXPECT_THAT(response, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 AllOf(HasSubstr("redirect loop"), Not(HasSubstr("s3cr3t")))));
  EXPECT_EQ(server_.RequestCount("/loop"), 1 + request.max_redirects);
}

TEST_F(HttpClientTest, RedirectsChangeTheMethodLikeFetch) {
  struct Case {
    std::string method;
    int code;
    std::string expected_method;
    bool keeps_body;
  };
  for (const Case& c : std::vector<Case>{{"POST", 301, "GET", false},
                                         {"POST", 302, "GET", false},
                                         {"POST", 303, "GET", false},
                                         {"PUT", 303, "GET", false},
                                         {"DELETE", 303, "GET", false},
                                         {"PUT", 302, "PUT", true},
                                         {"POST", 307, "POST", true},
                                         {"PATCH", 308, "PATCH", true}}) {
    const std::string label = absl::StrCat(c.method, " + ", c.code);
    HttpClientRequest request =
        Get(absl::StrCat("/redirect-to?code=", c.code, "&url=", UrlEncode(server_.Url("/echo"))));
    request.method = c.method;
    request.body = "payload";
    request.headers = {{"Content-Type", "text/plain"}};
    absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
    ASSERT_THAT(response, IsOk()) << label;
    EXPECT_EQ(Header(*response, "x-echo-method"), c.expected_method) << label;
    EXPECT_EQ(response->body, c.keeps_body ? "payload" : "") << label;
    EXPECT_EQ(Header(*response, "x-echo-header-content-type"),
              c.keeps_body ? "text/plain" : "<absent>")
        << label;
    EXPECT_EQ(response->final_url, server_.Url("/echo")) << label;
  }
}

TEST_F(HttpClientTest, CredentialsStayWithinTheOrigin) {
  TestHttpServer other;
  ASSERT_THAT(other.Start(), IsOk());
  for (const auto& [target, keeps] : std::vector<std::pair<std::string, bool>>{
           {server_.Url("/echo"), true}, {other.Url("/echo"), false}}) {
    HttpClientRequest request = Get(absl::StrCat("/redirect-to?code=307&url=", UrlEncode(target)));
    request.headers = {
        {"Authorization", "Bearer s3cr3t"}, {"Cookie", "session=1"}, {"X-Keep", "1"}};
    absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
    ASSERT_THAT(response, IsOk()) << target;
    EXPECT_EQ(Header(*response, "x-echo-header-authorization"),
              keeps ? "Bearer s3cr3t" : "<absent>")
        << target;
    EXPECT_EQ(Header(*response, "x-echo-header-cookie"), keeps ? "session=1" : "<absent>")
        << target;
    EXPECT_EQ(Header(*response, "x-echo-header-x-keep"), "1") << target;
  }
  EXPECT_EQ(other.RequestCount("/echo"), 1);
}

TEST_F(HttpClientTest, ARedirectToAnotherSchemeIsNotFollowed) {
  for (const std::string target : {"file:///etc/passwd", "ftp://127.0.0.1/x"}) {
    absl::StatusOr<HttpClientResponse> response = client_.Perform(
        Get(absl::StrCat("/redirect-to?code=302&url=", UrlEncode(target))), nullptr);
    EXPECT_THAT(response, StatusIs(absl::StatusCode::kInvalidArgument,
                                   AllOf(HasSubstr("cannot follow the redirect"),
                                         HasSubstr("unsupported URL scheme"))))
        << target;
  }
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  const int port = FreePort();
  HttpClientRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", port, "/x");
  request.headers = {{"Authorization", "Bearer s3cr3t"}};
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  EXPECT_THAT(response,
              StatusIs(absl::StatusCode::kUnavailable,
                       absl::StrCat("GET http://127.0.0.1:", port, "/x: connection refused")));
  EXPECT_TRUE(IsTransient(response.status()));
}

TEST_F(HttpClientTest, UnknownHostIsTransient) {
  // Depends on the machine's resolver: NXDOMAIN gives UNAVAILABLE ("DNS lookup failed"); with no
  // reachable DNS server the lookup can time out instead. Both are transient.
  HttpClientRequest request;
  request.url = "http://ndx-no-such-host.invalid/x";
  request.timeout = absl::Seconds(3);
  absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
  EXPECT_THAT(response.status().message(), HasSubstr("GET http://ndx-no-such-host.invalid/x: "));
  EXPECT_TRUE(IsTransient(response.status())) << response.status();
}

TEST_F(HttpClientTest, ErrorsNeverShowCredentials) {
  HttpClientRequest request;
  request.url = absl::StrCat("http://user:hunter2@127.0.0.1:", FreePort(), "/x");
  request.headers = {{"Authorization", "Bearer s3cr3t"}};
  absl::StatusOr<HttpClientResponse> refused = client_.Perform(request, nullptr);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kUnavailable,
                                AllOf(HasSubstr("user@127.0.0.1"), Not(HasSubstr("hunter2")),
                                      Not(HasSubstr("s3cr3t")))));

  request.url = server_.Url("/slow?ms=20000");
  request.timeout = absl::Milliseconds(200);
  EXPECT_THAT(client_.Perform(request, nullptr),
              StatusIs(absl::StatusCode::kDeadlineExceeded, Not(HasSubstr("s3cr3t"))));

  for (const std::string url : {"http://u:hunter2@exa mple.com/", "ftp://u:hunter2@127.0.0.1/"}) {
    request.url = url;
    EXPECT_THAT(client_.Perform(request, nullptr),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("u@"), Not(HasSubstr("hunter2")))));
  }

  request.url = server_.Url("/echo");
  request.timeout = absl::Seconds(10);
  request.headers = {{"Authorization", "Bearer s3cr3t\r\nX-Injected: 1"}};
  EXPECT_THAT(client_.Perform(request, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("Authorization"), Not(HasSubstr("s3cr3t")))));
}

TEST_F(HttpClientTest, RejectsBadUrlsAndSchemes) {
  for (const std::string url :
       {"", "not a url", "127.0.0.1/no-scheme", "file:///etc/passwd", "ftp://127.0.0.1/x",
        "gopher://127.0.0.1/x", "http://", "http://exa mple.com/", "https://[::1/x"}) {
    HttpClientRequest request;
    request.url = url;
    EXPECT_THAT(client_.Perform(request, nullptr), StatusIs(absl::StatusCode::kInvalidArgument))
        << "\"" << url << "\"";
  }
  EXPECT_EQ(server_.Connections(), 0);
}

TEST_F(HttpClientTest, RejectsBadMethodsHeadersAndLimits) {
  const auto perform = [&](auto mutate) {
    HttpClientRequest request = Get("/echo");
    mutate(request);
    return client_.Perform(request, nullptr);
  };
  EXPECT_THAT(perform([](HttpClientRequest& r) { r.method = "GE T"; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid HTTP method")));
  EXPECT_THAT(perform([](HttpClientRequest& r) { r.method = ""; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(perform([](HttpClientRequest& r) {
                r.method = "HEAD";
                r.body = "x";
              }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(perform([](HttpClientRequest& r) {
                r.headers = {{"Bad Name", "x"}};
              }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid header name")));
  EXPECT_THAT(perform([](HttpClientRequest& r) {
                r.headers = {{"X-A", "1\nX-B: 2"}};
              }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(perform([](HttpClientRequest& r) { r.timeout = absl::ZeroDuration(); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(perform([](HttpClientRequest& r) { r.max_redirects = -1; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(server_.Connections(), 0);
}

TEST_F(HttpClientTest, ReusesTheConnectionAcrossCallsOnOneThread) {
  for (int i = 0; i < 3; ++i) ASSERT_THAT(client_.Perform(Get("/status/200"), nullptr), IsOk());
  EXPECT_EQ(server_.TotalRequests(), 3);
  EXPECT_EQ(server_.Connections(), 1);
}

TEST_F(HttpClientTest, AConnectionTheServerClosedIsNotReused) {
  ASSERT_THAT(client_.Perform(Get("/status/200?close=1"), nullptr), IsOk());
  ASSERT_TRUE(WaitUntil([&] { return server_.ResponsesStarted("/status/200") == 1; }, kWait));
  absl::StatusOr<HttpClientResponse> next = client_.Perform(Get("/status/200"), nullptr);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(server_.Connections(), 2);
}

TEST_F(HttpClientTest, ConcurrentPerformsFromSeveralThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpClientRequest request = Get(absl::StrCat("/echo?t=", t, "&i=", i));
        request.method = "POST";
        request.body = absl::StrCat("thread ", t, " request ", i);
        absl::StatusOr<HttpClientResponse> response = client_.Perform(request, nullptr);
        if (response.ok() && response->status == 200 && response->body == request.body &&
            Header(*response, "x-echo-target") == absl::StrCat("/echo?t=", t, "&i=", i)) {
          ++ok;
        } else {
          ADD_FAILURE() << response.status() << " " << (response.ok() ? response->body : "");
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(server_.TotalRequests(), kThreads * kPerThread);
  // One kept-alive connection per thread.
  EXPECT_LE(server_.Connections(), kThreads);
}

TEST(UrlEncode, PercentEncodesAllButUnreservedCharacters) {
  EXPECT_EQ(UrlEncode(""), "");
  EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(UrlEncode("a b&c=d/e?f#g+h%"), "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25");
  EXPECT_EQ(UrlEncode("é"), "%C3%A9");
  EXPECT_EQ(UrlEncode(absl::string_view("\0\n", 2)), "%00%0A");
}

}  // namespace
}  // namespace ndx::engine
