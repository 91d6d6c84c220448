// Unit tests of the parts of ndx::pg that need no server: the exception -> status mapping, the
// SQLSTATE table, conninfo redaction and option checks. pg_pool_pgtest.cc runs the pool against a
// real PostgreSQL.
#include "libs/common/pg/pg_pool.h"

#include <stdexcept>
#include <string>

#include <pqxx/except>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace ndx::pg {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

template <typename E>
absl::Status Map(E exception, bool connection_lost = false) {
  return StatusFromException(std::make_exception_ptr(std::move(exception)), "postgres test failed",
                             connection_lost);
}

TEST(PgStatusFromException, BrokenConnectionIsUnavailable) {
  EXPECT_THAT(Map(pqxx::broken_connection("connection to server at \"127.0.0.1\" failed")),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("postgres test failed"), HasSubstr("127.0.0.1"))));
  EXPECT_THAT(Map(pqxx::too_many_connections("sorry, too many clients already")),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(PgStatusFromException, InDoubtCommitIsUnavailable) {
  EXPECT_THAT(Map(pqxx::in_doubt_error("lost")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("outcome is unknown")));
}

TEST(PgStatusFromException, TransactionRollbacksAreAbortedWithTheirSqlState) {
  const absl::Status serialization = Map(pqxx::serialization_failure("could not serialize"));
  EXPECT_THAT(serialization, StatusIs(absl::StatusCode::kAborted, HasSubstr("SQLSTATE 40001")));
  EXPECT_EQ(SqlStateOf(serialization), "40001");

  const absl::Status deadlock = Map(pqxx::deadlock_detected("deadlock detected"));
  EXPECT_THAT(deadlock, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(SqlStateOf(deadlock), "40P01");

  EXPECT_EQ(SqlStateOf(Map(pqxx::transaction_rollback("rolled back"))), "40000");
  EXPECT_EQ(SqlStateOf(Map(pqxx::statement_completion_unknown("?"))), "40003");
}

TEST(PgStatusFromException, SqlErrorsMapBySqlState) {
  EXPECT_THAT(Map(pqxx::unique_violation("ERROR:  duplicate key", "INSERT", "23505")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(Map(pqxx::foreign_key_violation("ERROR:  fk", "INSERT", "23503")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Map(pqxx::check_violation("ERROR:  check", "INSERT", "23514")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Map(pqxx::not_null_violation("ERROR:  null", "INSERT", "23502")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Map(pqxx::sql_error("ERROR:  canceling statement", "SELECT", "57014")),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(Map(pqxx::syntax_error("ERROR:  syntax error", "SELEC", "42601")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("SQLSTATE 42601")));
  EXPECT_THAT(Map(pqxx::sql_error("ERROR:  no state", "SELECT 1")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("no state")));
}

TEST(PgStatusFromException, StaleEpochSqlStateIsAbortedAndRecognizable) {
  const absl::Status status =
      Map(pqxx::sql_error("ERROR:  stale lease epoch 3 for task t1", "SELECT f()", "NDX01"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted, HasSubstr("stale lease epoch 3")));
  EXPECT_EQ(SqlStateOf(status), kStaleEpochSqlState);
}

TEST(PgStatusFromException, MessageIsOneLineWithSqlStateAndStatement) {
  const absl::Status status = Map(
      pqxx::unique_violation("ERROR:  duplicate key value violates unique constraint \"t_pkey\"\n"
                             "DETAIL:  Key (id)=(1) already exists.\n",
                             "INSERT INTO t (id)\n  VALUES ($1)", "23505"));
  EXPECT_EQ(status.message(),
            "postgres test failed: SQLSTATE 23505: ERROR: duplicate key value violates unique "
            "constraint \"t_pkey\" DETAIL: Key (id)=(1) already exists. "
            "[statement: INSERT INTO t (id) VALUES ($1)]");
}

TEST(PgStatusFromException, LongStatementsAreCut) {
  const std::string query = "SELECT " + std::string(500, 'x');
  const absl::Status status = Map(pqxx::sql_error("ERROR:  boom", query, "XX000"));
  EXPECT_THAT(status.message(), HasSubstr("xxx...]"));
  EXPECT_LT(status.message().size(), 300u);
}

TEST(PgStatusFromException, ConnectionLostMakesLibpqxxErrorsUnavailable) {
  EXPECT_THAT(Map(pqxx::failure("could not reconnect"), /*connection_lost=*/true),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Map(pqxx::failure("odd"), /*connection_lost=*/false),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(Map(pqxx::sql_error("ERROR:  x", "SELECT 1", "42601"), /*connection_lost=*/true),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(PgStatusFromException, OtherExceptionsAreInternalOrUnknown) {
  EXPECT_THAT(Map(pqxx::conversion_error("cannot convert 'abc' to int")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("abc")));
  EXPECT_THAT(Map(pqxx::unexpected_rows("Expected 1 row(s) of data from query, got 0.")),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(Map(pqxx::usage_error("misuse")), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(Map(std::runtime_error("plain")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("plain")));
  EXPECT_THAT(Map(42), StatusIs(absl::StatusCode::kUnknown));
  EXPECT_THAT(StatusFromException(nullptr, "x"), StatusIs(absl::StatusCode::kInternal));
}

TEST(PgSqlStateCode, Table) {
  struct Case {
    const char* sqlstate;
    absl::StatusCode code;
  };
  constexpr Case kCases[] = {
      {"NDX01", absl::StatusCode::kAborted},
      {"40001", absl::StatusCode::kAborted},
      {"40P01", absl::StatusCode::kAborted},
      {"40002", absl::StatusCode::kAborted},
      {"55P03", absl::StatusCode::kAborted},
      {"23505", absl::StatusCode::kAlreadyExists},
      {"23503", absl::StatusCode::kFailedPrecondition},
      {"23P01", absl::StatusCode::kFailedPrecondition},
      {"57014", absl::StatusCode::kDeadlineExceeded},
      {"57P01", absl::StatusCode::kUnavailable},
      {"57P03", absl::StatusCode::kUnavailable},
      {"08006", absl::StatusCode::kUnavailable},
      {"53100", absl::StatusCode::kUnavailable},
      {"22012", absl::StatusCode::kInternal},
      {"42P01", absl::StatusCode::kInternal},
      {"P0001", absl::StatusCode::kInternal},
      {"NDX99", absl::StatusCode::kInternal},
      {"", absl::StatusCode::kInternal},
  };
  for (const Case& c : kCases) {
    EXPECT_EQ(internal::StatusCodeForSqlState(c.sqlstate), c.code) << "SQLSTATE " << c.sqlstate;
  }
}

TEST(PgSqlStateOf, EmptyForOtherStatuses) {
  EXPECT_EQ(SqlStateOf(absl::OkStatus()), "");
  EXPECT_EQ(SqlStateOf(absl::AbortedError("lease")), "");
}

TEST(PgRedactedConninfo, Uri) {
  EXPECT_EQ(RedactedConninfo("postgresql://ndx:s3cret@db.internal:5432/ndx?sslmode=disable"),
            "postgresql://ndx:***@db.internal:5432/ndx?sslmode=disable");
  EXPECT_EQ(RedactedConninfo("postgres://ndx:p%40ss@h/db"), "postgres://ndx:***@h/db");
  EXPECT_EQ(RedactedConninfo("postgresql://ndx@h:5432/db"), "postgresql://ndx@h:5432/db");
  EXPECT_EQ(RedactedConninfo("postgresql://h/db?user=u&password=pw&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(RedactedConninfo("postgresql://"), "postgresql://");
  // A password with a raw '@' or '/' (invalid, but seen in the wild) is still hidden.
  EXPECT_EQ(RedactedConninfo("postgresql://u:a@b/c@h/db"), "postgresql://u:***@h/db");
}

TEST(PgRedactedConninfo, KeyValue) {
  EXPECT_EQ(RedactedConninfo("host=h port=5432 user=u password=s3cret dbname=db"),
            "host=h port=5432 user=u password=*** dbname=db");
  EXPECT_EQ(RedactedConninfo("host=h password = 'with space \\' quote' dbname=db"),
            "host=h password = *** dbname=db");
  EXPECT_EQ(RedactedConninfo("host=h dbname=db"), "host=h dbname=db");
  EXPECT_EQ(RedactedConninfo(""), "");
  // Malformed: what follows the point where parsing stops is hidden.
  EXPECT_EQ(RedactedConninfo("host=h password s3cret"), "host=h ***");
  EXPECT_EQ(RedactedConninfo("host=h password='s3cret"), "host=h password=***");
}

TEST(PgConninfoSecrets, RawAndDecodedLongestFirst) {
  EXPECT_THAT(internal::ConninfoSecrets("postgresql://u:p%40ss@h/db"),
              ElementsAre("p%40ss", "p@ss"));
  EXPECT_THAT(internal::ConninfoSecrets("host=h password='a b\\'c'"),
              ElementsAre("'a b\\'c'", "a b'c"));
  EXPECT_THAT(internal::ConninfoSecrets("host=h"), ElementsAre());
}

TEST(PgConninfoWithConnectTimeout, UsesTheStringsOwnSyntax) {
  EXPECT_EQ(internal::ConninfoWithConnectTimeout("postgresql://h/db", 5),
            "postgresql://h/db?connect_timeout=5");
  EXPECT_EQ(internal::ConninfoWithConnectTimeout("postgresql://h/db?sslmode=disable", 5),
            "postgresql://h/db?sslmode=disable&connect_timeout=5");
  EXPECT_EQ(internal::ConninfoWithConnectTimeout("postgresql://h/db?", 5),
            "postgresql://h/db?connect_timeout=5");
  EXPECT_EQ(internal::ConninfoWithConnectTimeout("host=h dbname=db", 2),
            "host=h dbname=db connect_timeout=2");
  EXPECT_EQ(internal::ConninfoWithConnectTimeout("", 3), "connect_timeout=3");
}

TEST(PgPoolCreate, ChecksOptionsWithoutConnecting) {
  // Nothing listens on port 1; Create must not try.
  EXPECT_THAT(PgPool::Create({.conninfo = "postgresql://u@127.0.0.1:1/db"}), IsOk());
  EXPECT_THAT(PgPool::Create({.conninfo = "host=h", .size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
  EXPECT_THAT(PgPool::Create({.conninfo = "host=h", .connect_timeout = absl::ZeroDuration()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("connect_timeout")));
  EXPECT_THAT(PgPool::Create({.conninfo = "host=h", .acquire_timeout = absl::Seconds(-1)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("acquire_timeout")));
  EXPECT_THAT(PgPool::Create({.conninfo = "host=h", .statement_timeout = absl::ZeroDuration()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("statement_timeout")));
}

TEST(PgPoolCreate, MalformedConninfoIsInvalidArgumentWithoutThePassword) {
  // libpq echoes the raw token in this error ("invalid percent-encoded token: ...").
  const absl::StatusOr<std::unique_ptr<PgPool>> pool =
      PgPool::Create({.conninfo = "postgresql://u:s3cr%zzt@h/db"});
  EXPECT_THAT(pool, StatusIs(absl::StatusCode::kInvalidArgument,
                             AllOf(HasSubstr("invalid conninfo"), Not(HasSubstr("s3cr")))));
  EXPECT_THAT(PgPool::Create({.conninfo = "postgresql://u:s3cret@h/db?bogus=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("bogus"), Not(HasSubstr("s3cret")))));
}

TEST(PgPoolCreate, RedactedConninfoIsExposedForLogs) {
  absl::StatusOr<std::unique_ptr<PgPool>> pool =
      PgPool::Create({.conninfo = "postgresql://u:s3cret@h/db"});
  ASSERT_THAT(pool, IsOk());
  EXPECT_EQ((*pool)->redacted_conninfo(), "postgresql://u:***@h/db");
}

}  // namespace
}  // namespace ndx::pg
