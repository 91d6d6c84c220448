// Unit tests of ndx::redis that need no Redis server: URL parsing and redaction, the error
// mapping table, RedisReply, the reconnect backoff (with a FakeClock), option validation and the
// pool's lending rules (a pool does no I/O until a command is sent).
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"
#include "tests/testing/status_matchers.h"

namespace ndx::redis {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "s3cret";

// ---------------------------------------------------------------------------------------------
// ParseRedisUrl

TEST(RedisUrl, ParsesHostOnlyWithDefaults) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://localhost");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->host, "localhost");
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->unix_socket, "");
  EXPECT_EQ(o->connect_timeout, RedisOptions().connect_timeout);
  EXPECT_EQ(o->reconnect_backoff_min, absl::Milliseconds(20));
  EXPECT_EQ(o->reconnect_backoff_max, absl::Seconds(1));
}

TEST(RedisUrl, ParsesPasswordAndDb) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://:s3cret@127.0.0.1:6380/2");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->db, 2);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->username, "");
}

TEST(RedisUrl, ParsesUserAndPassword) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://alice:s3cret@redis.internal:7000/0");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->username, "alice");
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->host, "redis.internal");
  EXPECT_EQ(o->port, 7000);
}

TEST(RedisUrl, ParsesIpv6HostInBrackets) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://[::1]:6390/3");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 6390);
  EXPECT_EQ(o->db, 3);
  ASSERT_THAT(ParseRedisUrl("redis://[::1]"), IsOk());
}

TEST(RedisUrl, EmptyPathMeansDbZero) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://host:1/");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->db, 0);
}

TEST(RedisUrl, PercentDecodesCredentials) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://al%69ce:p%40ss%2Fw%3Ard%25@host");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->username, "alice");
  EXPECT_EQ(o->password, "p@ss/w:rd%");
}

TEST(RedisUrl, ToleratesUnencodedAtAndSlashInPassword) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://:p@ss/word@host:6381/4");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->password, "p@ss/word");
  EXPECT_EQ(o->host, "host");
  EXPECT_EQ(o->port, 6381);
  EXPECT_EQ(o->db, 4);
}

TEST(RedisUrl, ParsesQueryParameters) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl(
      "redis://host/1?client_name=ndx-worker&connect_timeout=250ms&command_timeout=3s");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->db, 1);
  EXPECT_EQ(o->client_name, "ndx-worker");
  EXPECT_EQ(o->connect_timeout, absl::Milliseconds(250));
  EXPECT_EQ(o->command_timeout, absl::Seconds(3));
}

TEST(RedisUrl, ParsesUnixSocketWithParameters) {
  absl::StatusOr<RedisOptions> o =
      ParseRedisUrl("unix:///run/redis/redis.sock?db=3&password=s3%26cret&user=alice");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(o->db, 3);
  EXPECT_EQ(o->password, "s3&cret");
  EXPECT_EQ(o->username, "alice");
}

TEST(RedisUrl, ParsesUnixSocketWithoutParameters) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("unix:///tmp/redis.sock");
  ASSERT_THAT(o, IsOk());
  EXPECT_EQ(o->unix_socket, "/tmp/redis.sock");
  EXPECT_EQ(o->db, 0);
  EXPECT_EQ(o->password, "");
}

TEST(RedisUrl, SchemeIsCaseInsensitive) {
  EXPECT_THAT(ParseRedisUrl("REDIS://host"), IsOk());
  EXPECT_THAT(ParseRedisUrl("Unix:///x.sock"), IsOk());
}

struct BadUrl {
  const char* url;
  const char* message;  // a part of the error message that says what is wrong
};

TEST(RedisUrl, ErrorsSayWhatIsWrongAndNeverShowThePassword) {
  const BadUrl kCases[] = {
      {"", "empty"},
      {"localhost:6379", "must start with redis:// or unix://"},
      {"http://host", "scheme must be redis:// or unix://"},
      {"rediss://:s3cret@host", "TLS"},
      {"redis://", "host is missing"},
      {"redis://:s3cret@", "host is missing"},
      {"redis://:s3cret@:6379", "host is missing"},
      {"redis://:s3cret", "host is missing"},
      {"redis://host:0", "port must be a number in 1..65535"},
      {"redis://host:65536", "port must be a number in 1..65535"},
      {"redis://host:s3cret", "port must be a number in 1..65535"},
      {"redis://host:", "port must be a number in 1..65535"},
      {"redis://host:+1", "port must be a number in 1..65535"},
      {"redis://host/s3cret", "database must be a non-negative integer"},
      {"redis://host/-1", "database must be a non-negative integer"},
      {"redis://host/1/2", "database must be a non-negative integer"},
      {"redis://::1:6379", "IPv6 host must be written in brackets"},
      {"redis://[::1", "closing ']'"},
      {"redis://[::1]6379", "only ':port' may follow"},
      {"redis://s3cret@host", "credentials must be written ':password@' or 'user:password@'"},
      {"redis://alice:@host", "user name needs a password"},
      {"redis://:s3%zzcret@host", "invalid percent-encoding in the password"},
      {"redis://:s3cret%4@host", "invalid percent-encoding in the password"},
      {"redis://al%G1ce:s3cret@host", "invalid percent-encoding in the user name"},
      {"redis://:s3c#ret@host", "'#' is not allowed"},
      {"redis://host?pasword=s3cret", "unknown query parameter 'pasword'"},
      {"redis://host/1?db=2", "database is given both in the path and as ?db="},
      {"redis://:s3cret@host?password=s3cret", "password is given both"},
      {"redis://host?db=1&db=2", "'db' is given twice"},
      {"redis://host?s3cret", "every query parameter must be name=value"},
      {"redis://host?db=x", "database must be a non-negative integer"},
      {"redis://host?command_timeout=soon", "command_timeout must be a positive duration"},
      {"redis://host?connect_timeout=0s", "connect_timeout must be a positive duration"},
      {"unix://localhost/run/redis.sock", "absolute socket path and no host"},
      {"unix://", "absolute socket path and no host"},
      {"unix:///", "socket path is missing"},
      {"unix:///x.sock?password=s3cret%g0", "invalid percent-encoding in the password"},
      {"unix:///x.sock?user=alice", "user name needs a password"},
  };
  for (const BadUrl& c : kCases) {
    SCOPED_TRACE(c.url);
    EXPECT_THAT(ParseRedisUrl(c.url),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("invalid Redis URL"), HasSubstr(c.message),
                               Not(HasSubstr(kSecret)))));
  }
}

// ---------------------------------------------------------------------------------------------
// RedactedUrl

TEST(RedisUrl, RedactsPasswordsInUrls) {
  EXPECT_EQ(RedactedUrl("redis://:s3cret@host:1/0"), "redis://:***@host:1/0");
  EXPECT_EQ(RedactedUrl("redis://alice:s3cret@host"), "redis://alice:***@host");
  EXPECT_EQ(RedactedUrl("redis://host:1/2"), "redis://host:1/2");
  EXPECT_EQ(RedactedUrl("unix:///s.sock?db=1&password=s3cret&user=a"),
            "unix:///s.sock?db=1&password=***&user=a");
  EXPECT_EQ(RedactedUrl("redis://host?PASSWORD=s3cret"), "redis://host?PASSWORD=***");
}

TEST(RedisUrl, RedactsCredentialsOfMalformedUrls) {
  const char* kCases[] = {
      "redis://s3cret@host",
      "redis://:s3c?ret@host",
      "redis://:s3c/ret@host",
      "redis://:s3cret@host?password=s3cret",
      "s3cret",
      "redis:s3cret",
      "redis://host/0?password=s3c@ret",
  };
  for (const char* url : kCases) {
    SCOPED_TRACE(url);
    EXPECT_THAT(RedactedUrl(url), Not(HasSubstr("s3c")));
  }
}

TEST(RedisUrl, RedactsOptions) {
  RedisOptions o;
  o.username = "alice";
  o.password = kSecret;
  o.db = 2;
  EXPECT_EQ(RedactedUrl(o), "redis://alice:***@127.0.0.1:6379/2");
  o.username.clear();
  o.host = "::1";
  EXPECT_EQ(RedactedUrl(o), "redis://:***@[::1]:6379/2");
  o.password.clear();
  EXPECT_EQ(RedactedUrl(o), "redis://[::1]:6379/2");
  o.unix_socket = "/run/redis.sock";
  o.password = kSecret;
  EXPECT_EQ(RedactedUrl(o), "unix:///run/redis.sock?db=2&password=***");
}

TEST(RedisUrl, RedactedOptionsParseBack) {
  absl::StatusOr<RedisOptions> o = ParseRedisUrl("redis://alice:s3cret@[::1]:7000/5");
  ASSERT_THAT(o, IsOk());
  absl::StatusOr<RedisOptions> back = ParseRedisUrl(RedactedUrl(*o));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->host, "::1");
  EXPECT_EQ(back->port, 7000);
  EXPECT_EQ(back->db, 5);
  EXPECT_EQ(back->password, "***");
}

// ---------------------------------------------------------------------------------------------
// Error mapping

struct ReplyCase {
  const char* error;
  absl::StatusCode code;
};

TEST(RedisErrorMapping, MapsErrorRepliesByFirstWord) {
  const ReplyCase kCases[] = {
      {"LOADING Redis is loading the dataset in memory", absl::StatusCode::kUnavailable},
      {"BUSY Redis is busy running a script.", absl::StatusCode::kUnavailable},
      {"MASTERDOWN Link with MASTER is down", absl::StatusCode::kUnavailable},
      {"TRYAGAIN Multiple keys request during rehashing of slot", absl::StatusCode::kUnavailable},
      {"CLUSTERDOWN The cluster is down", absl::StatusCode::kUnavailable},
      {"READONLY You can't write against a read only replica.", absl::StatusCode::kUnavailable},
      {"OOM command not allowed when used memory > 'maxmemory'.",
       absl::StatusCode::kResourceExhausted},
      {"NOAUTH Authentication required.", absl::StatusCode::kUnauthenticated},
      {"WRONGPASS invalid username-password pair or user is disabled.",
       absl::StatusCode::kUnauthenticated},
      {"NOPERM this user has no permissions to run the 'set' command",
       absl::StatusCode::kPermissionDenied},
      {"NOSCRIPT No matching script. Please use EVAL.", absl::StatusCode::kNotFound},
      {"ERR unknown command 'FOO'", absl::StatusCode::kInternal},
      {"WRONGTYPE Operation against a key holding the wrong kind of value",
       absl::StatusCode::kInternal},
      {"EXECABORT Transaction discarded because of previous errors.", absl::StatusCode::kInternal},
      {"LOADINGX not a known word", absl::StatusCode::kInternal},
      {"", absl::StatusCode::kInternal},
  };
  for (const ReplyCase& c : kCases) {
    SCOPED_TRACE(c.error);
    absl::Status s = ErrorReplyToStatus(c.error, "redis 127.0.0.1:1234: GET");
    EXPECT_EQ(s.code(), c.code);
    EXPECT_EQ(s.message(), absl::StrCat("redis 127.0.0.1:1234: GET: ", c.error));
  }
}

TEST(RedisErrorMapping, MapsNdxScriptErrorsToTheirCodeWithTheirMessage) {
  struct NdxCase {
    const char* error;
    absl::StatusCode code;
    const char* message;
  };
  const NdxCase kCases[] = {
      {"NDX_ABORTED stale epoch", absl::StatusCode::kAborted, "stale epoch"},
      {"NDX_NOT_FOUND execution e-1 not found", absl::StatusCode::kNotFound,
       "execution e-1 not found"},
      {"NDX_FAILED_PRECONDITION execution already finished", absl::StatusCode::kFailedPrecondition,
       "execution already finished"},
      {"NDX_INVALID_ARGUMENT bad priority", absl::StatusCode::kInvalidArgument, "bad priority"},
      {"NDX_RESOURCE_EXHAUSTED queue is full", absl::StatusCode::kResourceExhausted,
       "queue is full"},
      {"NDX_ALREADY_EXISTS duplicate request", absl::StatusCode::kAlreadyExists,
       "duplicate request"},
      {"NDX_UNAVAILABLE  draining", absl::StatusCode::kUnavailable, "draining"},
      {"NDX_ABORTED", absl::StatusCode::kAborted, "NDX_ABORTED"},
      {"NDX_ABORTED stale epoch script: b0b1983613a1e537056eb902cb494c03a2437034, on "
       "@user_script:1.",
       absl::StatusCode::kAborted, "stale epoch"},
      {"NDX_ABORTED odd script: not-a-sha", absl::StatusCode::kAborted, "odd script: not-a-sha"},
  };
  for (const NdxCase& c : kCases) {
    SCOPED_TRACE(c.error);
    absl::Status s = ErrorReplyToStatus(c.error, "redis x: EVALSHA");
    EXPECT_EQ(s.code(), c.code);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(RedisErrorMapping, UnknownNdxCodesAreInternal) {
  EXPECT_THAT(ErrorReplyToStatus("NDX_BOGUS what", "w"),
              StatusIs(absl::StatusCode::kInternal, "w: NDX_BOGUS what"));
  EXPECT_THAT(ErrorReplyToStatus("NDX_OK fine", "w"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(ErrorReplyToStatus("NDX_ aborted", "w"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(ErrorReplyToStatus("ERR NDX_ABORTED inside", "w"),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(RedisErrorMapping, MapsTransportFailures) {
  const std::string where = "redis 127.0.0.1:1234: GET";
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kIo, EAGAIN, "Resource temporarily unavailable", where),
              StatusIs(absl::StatusCode::kDeadlineExceeded, where + ": timed out"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kIo, ETIMEDOUT, "Connection timed out", where),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kIo, ETIMEDOUT, "Connection timed out",
                              "redis 127.0.0.1:1234: connect", /*connecting=*/true),
              StatusIs(absl::StatusCode::kUnavailable,
                       "redis 127.0.0.1:1234: connect: connect "
                       "timed out"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kIo, ECONNREFUSED, "Connection refused",
                              "redis 127.0.0.1:1234: connect", true),
              StatusIs(absl::StatusCode::kUnavailable,
                       "redis 127.0.0.1:1234: connect: connection refused"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kIo, ECONNRESET, "Connection reset by peer", where),
              StatusIs(absl::StatusCode::kUnavailable, where + ": connection reset by peer"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kEof, 0, "Server closed the connection", where),
              StatusIs(absl::StatusCode::kUnavailable, where + ": server closed the connection"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kProtocol, 0, "Protocol error, got \"%\"", where),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("protocol error")));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kOom, 0, "Out of memory", where),
              StatusIs(absl::StatusCode::kResourceExhausted, where + ": out of memory"));
  EXPECT_THAT(IoErrorToStatus(IoErrorKind::kOther, 0, "Name or service not known", where),
              StatusIs(absl::StatusCode::kUnavailable, where + ": name or service not known"));
}

// ---------------------------------------------------------------------------------------------
// RedisReply

TEST(RedisReply, AccessorsFollowTheType) {
  EXPECT_TRUE(RedisReply().is_nil());
  EXPECT_EQ(RedisReply::Integer(7).integer(), 7);
  EXPECT_EQ(RedisReply::String(std::string("a\0b", 3)).str(), std::string("a\0b", 3));
  EXPECT_TRUE(RedisReply::Status("OK").is_status());
  EXPECT_TRUE(RedisReply::Error("ERR x").is_error());
  RedisReply array = RedisReply::Array({RedisReply::Integer(1), RedisReply::Nil()});
  ASSERT_TRUE(array.is_array());
  ASSERT_EQ(array.elements().size(), 2u);
  EXPECT_EQ(array.elements()[0], RedisReply::Integer(1));
  EXPECT_EQ(array.str(), "");
  EXPECT_EQ(RedisReply::String("x").integer(), 0);
}

TEST(RedisReply, ConvertsValues) {
  EXPECT_EQ(*RedisReply::Integer(-3).AsInt(), -3);
  EXPECT_EQ(*RedisReply::String("42").AsInt(), 42);
  EXPECT_THAT(RedisReply::String("4x").AsInt(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(RedisReply::Nil().AsInt(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("got nil")));
  EXPECT_THAT(RedisReply::Error("ERR boom").AsInt(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("ERR boom")));
  EXPECT_EQ(*RedisReply::Status("OK").AsString(), "OK");
  EXPECT_THAT(RedisReply::Nil().AsString(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(*RedisReply::Nil().AsOptionalString(), std::nullopt);
  EXPECT_EQ(*RedisReply::String("v").AsOptionalString(), "v");
  EXPECT_THAT(RedisReply::Integer(1).AsOptionalString(), StatusIs(absl::StatusCode::kInternal));
}

TEST(RedisReply, ToStatusMapsErrorReplies) {
  EXPECT_THAT(RedisReply::String("x").ToStatus(), IsOk());
  EXPECT_THAT(RedisReply::Error("NDX_ABORTED stale epoch").ToStatus(),
              StatusIs(absl::StatusCode::kAborted, "stale epoch"));
  EXPECT_THAT(RedisReply::Error("BUSY script").ToStatus("redis h:1"),
              StatusIs(absl::StatusCode::kUnavailable, "redis h:1: BUSY script"));
}

TEST(RedisReply, DebugStringEscapesBinary) {
  RedisReply r =
      RedisReply::Array({RedisReply::String(std::string("a\0\n", 3)), RedisReply::Integer(5),
                         RedisReply::Nil(), RedisReply::Status("OK"), RedisReply::Error("ERR e")});
  EXPECT_EQ(r.DebugString(), R"(["a\x00\n", 5, nil, +OK, -ERR e])");
}

// ---------------------------------------------------------------------------------------------
// ReconnectBackoff

TEST(RedisReconnectBackoff, DoublesFromMinToMax) {
  common::FakeClock clock;
  ReconnectBackoff backoff(absl::Milliseconds(20), absl::Seconds(1));
  EXPECT_EQ(backoff.Remaining(clock.Now()), absl::ZeroDuration());
  const int64_t kExpectedMs[] = {20, 40, 80, 160, 320, 640, 1000, 1000, 1000};
  for (int64_t ms : kExpectedMs) {
    SCOPED_TRACE(ms);
    backoff.RecordFailure(clock.Now());
    EXPECT_EQ(backoff.Remaining(clock.Now()), absl::Milliseconds(ms));
    clock.Advance(absl::Milliseconds(ms - 1));
    EXPECT_EQ(backoff.Remaining(clock.Now()), absl::Milliseconds(1));
    clock.Advance(absl::Milliseconds(1));
    EXPECT_EQ(backoff.Remaining(clock.Now()), absl::ZeroDuration());
  }
}

TEST(RedisReconnectBackoff, ResetStartsOverFromMin) {
  common::FakeClock clock;
  ReconnectBackoff backoff(absl::Milliseconds(20), absl::Seconds(1));
  backoff.RecordFailure(clock.Now());
  backoff.RecordFailure(clock.Now());
  backoff.RecordFailure(clock.Now());
  EXPECT_EQ(backoff.next_delay(), absl::Milliseconds(160));
  backoff.Reset();
  EXPECT_EQ(backoff.Remaining(clock.Now()), absl::ZeroDuration());
  backoff.RecordFailure(clock.Now());
  EXPECT_EQ(backoff.Remaining(clock.Now()), absl::Milliseconds(20));
}

TEST(RedisReconnectBackoff, ClockJumpingBackwardsDoesNotStallReconnects) {
  common::FakeClock clock;
  ReconnectBackoff backoff(absl::Milliseconds(20), absl::Seconds(1));
  backoff.RecordFailure(clock.Now());
  clock.Advance(-absl::Hours(1));
  EXPECT_EQ(backoff.Remaining(clock.Now()), absl::Milliseconds(20));
}

// ---------------------------------------------------------------------------------------------
// RedisConnection: argument and option checks happen before any I/O.

TEST(RedisConnection, RejectsUnusableOptionsWithoutConnecting) {
  RedisOptions o;
  o.host = "";
  EXPECT_THAT(RedisConnection(o).Ping(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host is empty")));
  o = RedisOptions();
  o.port = 70000;
  EXPECT_THAT(RedisConnection(o).Connect(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("port")));
  o = RedisOptions();
  o.command_timeout = absl::ZeroDuration();
  EXPECT_THAT(RedisConnection(o).Connect(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("command_timeout")));
  o = RedisOptions();
  o.reconnect_backoff_max = absl::Milliseconds(1);
  EXPECT_THAT(RedisConnection(o).Connect(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("backoff")));
}

TEST(RedisConnection, RejectsEmptyCommandsAndNonPositiveTimeouts) {
  RedisConnection c(RedisOptions{});
  EXPECT_THAT(c.Command({}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(c.Command({"BLPOP", "q", "0"}, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
  EXPECT_THAT(c.Pipeline({{"PING"}, {}}), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<RedisReply>> none = c.Pipeline(RedisPipeline());
  ASSERT_THAT(none, IsOk());
  EXPECT_TRUE(none->empty());
  EXPECT_FALSE(c.connected());
}

TEST(RedisConnection, EndpointNamesTheServer) {
  RedisOptions o;
  o.host = "10.0.0.7";
  o.port = 6400;
  EXPECT_EQ(RedisConnection(o).endpoint(), "10.0.0.7:6400");
  o.host = "::1";
  EXPECT_EQ(RedisConnection(o).endpoint(), "[::1]:6400");
  o.unix_socket = "/run/r.sock";
  EXPECT_EQ(RedisConnection(o).endpoint(), "unix:/run/r.sock");
}

TEST(RedisPipeline, CountsEntries) {
  RedisScript script("return 1");
  RedisPipeline p;
  EXPECT_TRUE(p.empty());
  p.Add({"SET", "a", "1"}).Eval(script, {"a"}, {"x", "y"}).Add({"GET", "a"});
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(script.sha(), "");  // nothing is loaded before a pipeline is sent
}

// ---------------------------------------------------------------------------------------------
// RedisPool: Acquire does no I/O, so these need no server.

TEST(RedisPool, LendsUpToSizeThenReportsExhausted) {
  RedisPool pool(RedisOptions{}, 2);
  EXPECT_EQ(pool.created(), 0);
  absl::StatusOr<RedisPool::Lease> a = pool.Acquire(absl::ZeroDuration());
  absl::StatusOr<RedisPool::Lease> b = pool.Acquire(absl::ZeroDuration());
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(&**a, &**b);
  EXPECT_EQ(pool.created(), 2);
  EXPECT_THAT(
      pool.Acquire(absl::Milliseconds(20)),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("all 2 connections are busy")));
  RedisConnection* first = &**a;
  { RedisPool::Lease gone = *std::move(a); }
  absl::StatusOr<RedisPool::Lease> c = pool.Acquire(absl::ZeroDuration());
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(&**c, first);  // the returned connection is reused, no third one is made
  EXPECT_EQ(pool.created(), 2);
}

TEST(RedisPool, AcquireWaitsForAReturnedConnection) {
  RedisPool pool(RedisOptions{}, 1);
  absl::StatusOr<RedisPool::Lease> held = pool.Acquire(absl::ZeroDuration());
  ASSERT_THAT(held, IsOk());
  std::thread returner([lease = *std::move(held)]() mutable {
    absl::SleepFor(absl::Milliseconds(50));
    RedisPool::Lease drop = std::move(lease);
  });
  EXPECT_THAT(pool.Acquire(absl::Seconds(30)), IsOk());
  returner.join();
}

TEST(RedisPool, MovedLeaseReturnsTheConnectionOnce) {
  RedisPool pool(RedisOptions{}, 1);
  {
    absl::StatusOr<RedisPool::Lease> a = pool.Acquire(absl::ZeroDuration());
    ASSERT_THAT(a, IsOk());
    RedisPool::Lease b = *std::move(a);
    RedisPool::Lease c = std::move(b);
    b = std::move(c);
    EXPECT_THAT(pool.Acquire(absl::ZeroDuration()), StatusIs(absl::StatusCode::kResourceExhausted));
  }
  EXPECT_THAT(pool.Acquire(absl::ZeroDuration()), IsOk());
  EXPECT_EQ(pool.created(), 1);
}

}  // namespace
}  // namespace ndx::redis
