// Tests of ndx::redis against real redis-server processes (ndx::testing::RedisServer, on free
// ports). Tests that share the suite's server start from FLUSHALL + SCRIPT FLUSH; tests that kill,
// restart or configure a server start their own.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/redis/redis_coalescer.h"
#include "tests/testing/child_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::redis {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::RedisServer;
using ::ndx::testing::StatusIs;
using ::ndx::testing::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

RedisOptions OptionsFor(const RedisServer& server, int db = 0) {
  absl::StatusOr<RedisOptions> options = ParseRedisUrl(server.url(db));
  EXPECT_THAT(options, IsOk());
  return options.ok() ? *options : RedisOptions{};
}

// The suite's shared server, started once; every test begins with an empty server.
class RedisConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new RedisServer();
    start_status_ = new absl::Status(server_->Start());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete start_status_;
    server_ = nullptr;
    start_status_ = nullptr;
  }

  void SetUp() override {
    ASSERT_THAT(*start_status_, IsOk());
    options_ = OptionsFor(*server_);
    RedisConnection admin(options_);
    ASSERT_THAT(admin.Command({"FLUSHALL"}), IsOk());
    ASSERT_THAT(admin.Command({"SCRIPT", "FLUSH"}), IsOk());
  }

  static RedisServer* server_;
  static absl::Status* start_status_;
  RedisOptions options_;
};

RedisServer* RedisConnectionTest::server_ = nullptr;
absl::Status* RedisConnectionTest::start_status_ = nullptr;

TEST_F(RedisConnectionTest, SetAndGetBinaryValuesWithNulBytes) {
  RedisConnection redis(options_);
  const std::string key("k\0ey", 4);
  const std::string value("a\0b\xff\r\n\0", 7);
  ASSERT_THAT(redis.Command({"SET", key, value}), IsOk());

  absl::StatusOr<RedisReply> got = redis.Command({"GET", key});
  ASSERT_THAT(got, IsOk());
  ASSERT_TRUE(got->is_string()) << *got;
  EXPECT_EQ(got->str(), value);
  EXPECT_EQ(got->str().size(), 7u);

  absl::StatusOr<RedisReply> other = redis.Command({"GET", std::string("k", 1)});
  ASSERT_THAT(other, IsOk());
  EXPECT_TRUE(other->is_nil());
  EXPECT_EQ(*other->AsOptionalString(), std::nullopt);
  EXPECT_EQ(*redis.Command({"STRLEN", key})->AsInt(), 7);
}

TEST_F(RedisConnectionTest, CommandMapsErrorRepliesToStatus) {
  RedisConnection redis(options_);
  ASSERT_THAT(redis.Command({"SET", "s", "v"}), IsOk());
  EXPECT_THAT(
      redis.Command({"LPUSH", "s", "x"}),
      StatusIs(absl::StatusCode::kInternal,
               HasSubstr(absl::StrCat("redis 127.0.0.1:", server_->port(), ": LPUSH: WRONGTYPE"))));
  // An error reply does not break the connection.
  EXPECT_TRUE(redis.connected());
  EXPECT_THAT(redis.Ping(), IsOk());
}

TEST_F(RedisConnectionTest, PipelineReturnsRepliesInOrderWithAnErrorInTheMiddle) {
  RedisConnection redis(options_);
  absl::StatusOr<std::vector<RedisReply>> replies = redis.Pipeline({
      {"SET", "k", "1"},
      {"INCR", "k"},
      {"LPUSH", "k", "x"},  // WRONGTYPE
      {"GET", "k"},
      {"NOSUCHCOMMAND"},
      {"INCRBY", "k", "40"},
  });
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), 6u);
  EXPECT_EQ((*replies)[0], RedisReply::Status("OK"));
  EXPECT_EQ((*replies)[1], RedisReply::Integer(2));
  ASSERT_TRUE((*replies)[2].is_error());
  EXPECT_THAT((*replies)[2].str(), HasSubstr("WRONGTYPE"));
  EXPECT_THAT((*replies)[2].ToStatus(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ((*replies)[3], RedisReply::String("2"));
  EXPECT_TRUE((*replies)[4].is_error());
  EXPECT_EQ((*replies)[5], RedisReply::Integer(42));
  EXPECT_THAT(redis.Ping(), IsOk());
}

TEST_F(RedisConnectionTest, PipelineOfManyCommandsInOneRoundTrip) {
  RedisConnection redis(options_);
  const std::string value(1000, 'v');
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back(absl::StrCat("key:", i));
  std::vector<std::vector<std::string_view>> commands;
  for (const std::string& key : keys) commands.push_back({"SET", key, value});
  commands.push_back({"DBSIZE"});
  absl::StatusOr<std::vector<RedisReply>> replies = redis.Pipeline(commands);
  ASSERT_THAT(replies, IsOk());
  ASSERT_EQ(replies->size(), 5001u);
  EXPECT_EQ(replies->back(), RedisReply::Integer(5000));
}

TEST_F(RedisConnectionTest, EvalRunsByShaAndSurvivesScriptFlush) {
  const RedisScript incr_by("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  RedisConnection redis(options_);
  absl::StatusOr<RedisReply> r = redis.Eval(incr_by, {"counter"}, {"5"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, RedisReply::Integer(5));
  const std::string sha = incr_by.sha();
  EXPECT_EQ(sha.size(), 40u);
  EXPECT_EQ(*redis.Command({"SCRIPT", "EXISTS", sha}), RedisReply::Array({RedisReply::Integer(1)}));

  ASSERT_THAT(redis.Command({"SCRIPT", "FLUSH"}), IsOk());
  r = redis.Eval(incr_by, {"counter"}, {"7"});  // NOSCRIPT -> SCRIPT LOAD -> retried once
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, RedisReply::Integer(12));
  EXPECT_EQ(incr_by.sha(), sha);

  // A second connection shares the cached SHA.
  RedisConnection other(options_);
  EXPECT_EQ(*other.Eval(incr_by, {"counter"}, {"1"}), RedisReply::Integer(13));
}

TEST_F(RedisConnectionTest, ScriptThatDoesNotCompileIsInternal) {
  const RedisScript broken("return ((");
  RedisConnection redis(options_);
  EXPECT_THAT(redis.Eval(broken, {}, {}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("SCRIPT")));
  EXPECT_EQ(broken.sha(), "");
}

TEST_F(RedisConnectionTest, NdxScriptErrorsMapToTheirCodes) {
  const RedisScript error_reply_script("return redis.error_reply(ARGV[1])");
  const RedisScript raise_script("error({err = ARGV[1]})");
  struct Case {
    const char* error;
    absl::StatusCode code;
    const char* message;
  };
  const Case kCases[] = {
      {"NDX_ABORTED stale epoch", absl::StatusCode::kAborted, "stale epoch"},
      {"NDX_NOT_FOUND no execution e-9", absl::StatusCode::kNotFound, "no execution e-9"},
      {"NDX_FAILED_PRECONDITION already finished", absl::StatusCode::kFailedPrecondition,
       "already finished"},
      {"NDX_INVALID_ARGUMENT bad delay", absl::StatusCode::kInvalidArgument, "bad delay"},
      {"NDX_RESOURCE_EXHAUSTED payload too large", absl::StatusCode::kResourceExhausted,
       "payload too large"},
  };
  RedisConnection redis(options_);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.error);
    EXPECT_THAT(redis.Eval(error_reply_script, {"k"}, {c.error}), StatusIs(c.code, c.message));
    EXPECT_THAT(redis.Eval(raise_script, {"k"}, {c.error}), StatusIs(c.code, c.message));
  }
  EXPECT_THAT(redis.Eval(error_reply_script, {"k"}, {"ERR plain failure"}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("EVALSHA: ERR plain failure")));
  EXPECT_THAT(redis.Ping(), IsOk());
}

TEST_F(RedisConnectionTest, PipelineRunsScriptsAndReloadsThemAfterAFlush) {
  const RedisScript incr_by("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  RedisConnection redis(options_);
  RedisPipeline p;
  p.Add({"SET", "a", "1"}).Eval(incr_by, {"a"}, {"2"}).Add({"GET", "a"});

  absl::StatusOr<std::vector<RedisReply>> replies = redis.Pipeline(p);
  ASSERT_THAT(replies, IsOk());
  EXPECT_THAT(*replies, ElementsAre(RedisReply::Status("OK"), RedisReply::Integer(3),
                                    RedisReply::String("3")));

  // After SCRIPT FLUSH the EVALSHA answers NOSCRIPT: the script is loaded and that call alone is
  // sent again, so (as documented) it runs after the GET.
  ASSERT_THAT(redis.Command({"SCRIPT", "FLUSH"}), IsOk());
  replies = redis.Pipeline(p);
  ASSERT_THAT(replies, IsOk());
  EXPECT_THAT(*replies, ElementsAre(RedisReply::Status("OK"), RedisReply::Integer(3),
                                    RedisReply::String("1")));
  EXPECT_EQ(*redis.Command({"GET", "a"}), RedisReply::String("3"));
}

TEST_F(RedisConnectionTest, SelectIsolatesDatabases) {
  RedisConnection db0(options_);
  RedisConnection db5(OptionsFor(*server_, 5));
  ASSERT_THAT(db0.Command({"SET", "k", "zero"}), IsOk());
  ASSERT_THAT(db5.Command({"SET", "k", "five"}), IsOk());
  ASSERT_THAT(db5.Command({"SET", "only5", "x"}), IsOk());
  EXPECT_EQ(*db0.Command({"GET", "k"}), RedisReply::String("zero"));
  EXPECT_EQ(*db5.Command({"GET", "k"}), RedisReply::String("five"));
  EXPECT_EQ(*db0.Command({"DBSIZE"}), RedisReply::Integer(1));
  EXPECT_EQ(*db5.Command({"DBSIZE"}), RedisReply::Integer(2));
}

TEST_F(RedisConnectionTest, BlockingCommandWithPerCallTimeout) {
  RedisOptions options = options_;
  options.command_timeout = absl::Milliseconds(200);
  RedisConnection redis(options);

  // A block longer than the default timeout works with a per-call timeout.
  const absl::Time start = absl::Now();
  absl::StatusOr<RedisReply> r = redis.Command({"BLPOP", "empty", "0.5"}, absl::Seconds(5));
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->is_nil()) << *r;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));

  ASSERT_THAT(redis.Command({"RPUSH", "src", "job-1"}), IsOk());
  EXPECT_EQ(*redis.Command({"BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"}, absl::Seconds(5)),
            RedisReply::String("job-1"));

  // The default timeout is back for the next call.
  EXPECT_THAT(redis.Command({"BLPOP", "empty", "2"}),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("BLPOP: timed out")));
  EXPECT_FALSE(redis.connected());

  // A per-call timeout shorter than the block times out too; the connection comes back.
  ASSERT_TRUE(WaitUntil([&] { return redis.Ping().ok(); }, absl::Seconds(10)));
  EXPECT_THAT(redis.Command({"BLPOP", "empty", "0"}, absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(WaitUntil([&] { return redis.Ping().ok(); }, absl::Seconds(10)));
  EXPECT_EQ(*redis.Command({"LRANGE", "dst", "0", "-1"}),
            RedisReply::Array({RedisReply::String("job-1")}));
}

TEST_F(RedisConnectionTest, PoolUnderConcurrentUse) {
  RedisOptions options = options_;
  options.client_name = "ndx-pool-test";
  RedisPool pool(options, 3);
  constexpr int kThreads = 8;
  constexpr int kIncrementsPerThread = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, &failures] {
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        absl::StatusOr<RedisPool::Lease> redis = pool.Acquire(absl::Seconds(30));
        if (!redis.ok() || !(*redis)->Command({"INCR", "counter"}).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(pool.created(), 3);

  RedisConnection check(options_);
  EXPECT_EQ(*check.Command({"GET", "counter"}),
            RedisReply::String(absl::StrCat(kThreads * kIncrementsPerThread)));
  absl::StatusOr<RedisReply> clients = check.Command({"CLIENT", "LIST"});
  ASSERT_THAT(clients, IsOk());
  int named = 0;
  for (absl::string_view line : absl::StrSplit(clients->str(), '\n')) {
    if (absl::StrContains(line, "name=ndx-pool-test ")) ++named;
  }
  EXPECT_GE(named, 1);
  EXPECT_LE(named, 3);
}

TEST(RedisConnection, ClosedPortIsUnavailable) {
  RedisOptions options;
  options.port = ndx::testing::FreePort();
  RedisConnection redis(options);
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr(absl::StrCat("redis 127.0.0.1:", options.port,
                                                            ": connect: connection refused"))));
  // Within the backoff the next call fails fast, saying why.
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("reconnecting in")));
  EXPECT_FALSE(redis.connected());
}

TEST(RedisConnection, SurvivesKillAndRestartOfTheServer) {
  const RedisScript get_script("return redis.call('GET', KEYS[1])");
  RedisServer server;
  ASSERT_THAT(server.Start(), IsOk());
  RedisConnection redis(OptionsFor(server));
  ASSERT_THAT(redis.Command({"SET", "k", "before"}), IsOk());
  ASSERT_THAT(redis.Eval(get_script, {"k"}, {}), IsOk());

  server.Kill();
  // While it is down, every call fails with UNAVAILABLE: the broken connection, the backoff, and
  // real connect attempts (wait until one of those has been seen).
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable));
  bool refused = false;
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::Status s = redis.Ping();
        EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
        refused = absl::StrContains(s.message(), "connect: connection refused");
        return refused;
      },
      absl::Seconds(10)));

  ASSERT_THAT(server.Restart(), IsOk());
  // The same object reconnects once the backoff allows (at most 1 s by default).
  ASSERT_TRUE(WaitUntil([&] { return redis.Ping().ok(); }, absl::Seconds(10)));
  ASSERT_THAT(redis.Command({"SET", "k", "after"}), IsOk());
  // The restarted server has no scripts: Eval reloads.
  EXPECT_EQ(*redis.Eval(get_script, {"k"}, {}), RedisReply::String("after"));
}

TEST(RedisConnection, WritingToAKilledServerDoesNotRaiseSigpipe) {
  RedisServer server;
  ASSERT_THAT(server.Start(), IsOk());
  RedisConnection redis(OptionsFor(server));
  ASSERT_THAT(redis.Ping(), IsOk());
  server.Kill();
  // More than the socket buffers hold: the first write reaches the dead peer, which answers with
  // RST, and the next write fails with EPIPE (and SIGPIPE, which would kill this process).
  const std::string big(32 << 20, 'x');
  EXPECT_THAT(redis.Command({"SET", "k", big}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(redis.Pipeline({{"SET", "a", big}, {"SET", "b", big}}),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(RedisConnection, ReconnectBackoffFollowsTheInjectedClock) {
  RedisServer server;
  ASSERT_THAT(server.Start(), IsOk());
  common::FakeClock clock;
  RedisConnection redis(OptionsFor(server), clock);
  ASSERT_THAT(redis.Ping(), IsOk());

  server.Kill();
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable));  // the broken connection
  ASSERT_THAT(server.Restart(), IsOk());
  // The server is back, but the clock has not moved: fail fast.
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr("reconnecting in 20 ms; last error: PING: ")));
  clock.Advance(absl::Milliseconds(19));
  EXPECT_THAT(redis.Ping(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("reconnecting in 1 ms")));
  clock.Advance(absl::Milliseconds(1));
  EXPECT_THAT(redis.Ping(), IsOk());

  // The successful connect reset the backoff: the next failure waits 20 ms again, the one after
  // that (a refused connect) 40 ms.
  server.Kill();
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("in 20 ms")));
  clock.Advance(absl::Milliseconds(20));
  EXPECT_THAT(redis.Ping(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connect: connection refused")));
  EXPECT_THAT(redis.Ping(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("in 40 ms")));
}

TEST(RedisConnection, AuthenticatesWithPasswordAndAclUser) {
  const std::string kPassword = "correct-horse";
  RedisServer server(RedisServer::Options{.password = kPassword});
  ASSERT_THAT(server.Start(), IsOk());

  RedisConnection good(OptionsFor(server));
  ASSERT_THAT(good.Ping(), IsOk());

  RedisOptions wrong = OptionsFor(server);
  wrong.password = "wrong-battery";
  absl::Status s = RedisConnection(wrong).Ping();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("AUTH: WRONGPASS")));
  EXPECT_THAT(s.message(), Not(HasSubstr("wrong-battery")));
  EXPECT_THAT(s.message(), Not(HasSubstr(kPassword)));

  RedisOptions none = OptionsFor(server);
  none.password.clear();
  EXPECT_THAT(RedisConnection(none).Command({"GET", "k"}),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("NOAUTH")));

  // Redis 6+ ACL: AUTH user password.
  ASSERT_THAT(good.Command({"ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "&*", "+@all"}),
              IsOk());
  RedisOptions alice = OptionsFor(server);
  alice.username = "alice";
  alice.password = "alice-pw";
  RedisConnection as_alice(alice);
  EXPECT_THAT(as_alice.Ping(), IsOk());
  EXPECT_EQ(*as_alice.Command({"ACL", "WHOAMI"}), RedisReply::String("alice"));
  alice.password = "not-alice-pw";
  EXPECT_THAT(RedisConnection(alice).Ping(), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(RedisConnection, ConnectsOverAUnixSocket) {
  const std::string dir = ndx::testing::MakeTempDir("ndx-redis-unix");
  ASSERT_FALSE(dir.empty());
  const std::string socket = absl::StrCat(dir, "/redis.sock");
  ndx::testing::ChildProcess process;
  ASSERT_THAT(process.Start({"redis-server", "--port", "0", "--unixsocket", socket, "--save", "",
                             "--appendonly", "no", "--dir", dir},
                            absl::StrCat(dir, "/redis.log")),
              IsOk());
  absl::StatusOr<RedisOptions> options = ParseRedisUrl(absl::StrCat("unix://", socket, "?db=2"));
  ASSERT_THAT(options, IsOk());
  RedisConnection redis(*options);
  EXPECT_EQ(redis.endpoint(), absl::StrCat("unix:", socket));
  EXPECT_TRUE(WaitUntil([&] { return redis.Ping().ok(); }, absl::Seconds(10)))
      << ndx::testing::ReadFile(absl::StrCat(dir, "/redis.log"));
  EXPECT_THAT(redis.Command({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(*redis.Command({"GET", "k"}), RedisReply::String("v"));
  absl::StatusOr<RedisReply> info = redis.Command({"CLIENT", "INFO"});
  ASSERT_THAT(info, IsOk());
  EXPECT_THAT(info->str(), HasSubstr(" db=2 "));
  process.Signal(SIGTERM);
  process.Wait();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(RedisConnectionTest, CoalescerPipelinesConcurrentScriptCallsAndKeepsEachReply) {
  static const RedisScript kIncr("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  RedisCoalescer scripts(options_);
  constexpr int kThreads = 8, kCalls = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = absl::StrCat("c", t);
      const std::string by = absl::StrCat(t + 1);
      for (int i = 1; i <= kCalls; ++i) {
        absl::StatusOr<RedisReply> r = scripts.Eval(kIncr, {key}, {by});
        // Each thread's calls run in its order: the counter it reads back is its own.
        if (!r.ok() || !r->is_integer() || r->integer() != int64_t{i} * (t + 1)) wrong++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(scripts.calls(), kThreads * kCalls);
  EXPECT_LE(scripts.round_trips(), scripts.calls());
}

TEST_F(RedisConnectionTest, CoalescerMapsErrorRepliesAndReloadsLostScripts) {
  static const RedisScript kFail("return redis.error_reply('NDX_ABORTED stale epoch')");
  static const RedisScript kEcho("return ARGV[1]");
  RedisCoalescer scripts(options_);
  EXPECT_THAT(scripts.Eval(kFail, {}, {}),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("stale epoch")));
  ASSERT_THAT(scripts.Eval(kEcho, {}, {"a"}), IsOk());
  RedisConnection admin(options_);
  ASSERT_THAT(admin.Command({"SCRIPT", "FLUSH"}), IsOk());
  EXPECT_EQ(*scripts.Eval(kEcho, {}, {"b"}), RedisReply::String("b"));
}

TEST(RedisCoalescer, ACallFailsWithTheConnectionAndTheNextReconnects) {
  RedisServer server;
  ASSERT_THAT(server.Start(), IsOk());
  static const RedisScript kEcho("return ARGV[1]");
  common::FakeClock clock;
  RedisCoalescer scripts(OptionsFor(server), clock);
  ASSERT_THAT(scripts.Eval(kEcho, {}, {"a"}), IsOk());
  server.Kill();
  EXPECT_THAT(scripts.Eval(kEcho, {}, {"b"}), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(server.Restart(), IsOk());
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(*scripts.Eval(kEcho, {}, {"c"}), RedisReply::String("c"));
}

}  // namespace
}  // namespace ndx::redis
