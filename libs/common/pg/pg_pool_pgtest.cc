// PgPool against a real PostgreSQL: one server per test binary (started by SetUpTestSuite, about
// 1.5 s), with a database named for the binary and its pid. Tests that need no server (closed
// port, connect timeout, password redaction) are in the PgPoolUnreachable suite and start none.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/status_macros.h"
#include "tests/testing/child_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace ndx::pg {
namespace {

using ::ndx::testing::IsOk;
using ::ndx::testing::StatusIs;
using ::ndx::testing::WaitUntil;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

class PgPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ndx::testing::PostgresServer();
    setup_ = new absl::Status(StartServer());
  }

  static void TearDownTestSuite() {
    delete setup_;
    setup_ = nullptr;
    delete server_;  // stops the server and removes its directory
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_THAT(*setup_, IsOk()) << "PostgreSQL did not start"; }

  static absl::Status StartServer() {
    NDX_RETURN_IF_ERROR(server_->Start());
    return server_->CreateDatabase(DatabaseName());
  }

  static std::string DatabaseName() { return absl::StrCat("ndx_test_pg_pgtest_", ::getpid()); }

  // A pool on the test database; `options.conninfo` is filled in.
  static std::unique_ptr<PgPool> MakePool(PgPoolOptions options = {}) {
    options.conninfo = server_->url(DatabaseName());
    absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(std::move(options));
    EXPECT_THAT(pool, IsOk());
    return pool.ok() ? *std::move(pool) : nullptr;
  }

  // Runs `sql` (several statements allowed) in one transaction.
  static absl::Status Exec(PgPool& pool, const std::string& sql) {
    return pool.Run([&sql](pqxx::work& tx) {
      tx.exec(sql);
      return absl::OkStatus();
    });
  }

  static int64_t CountRows(PgPool& pool, const std::string& table) {
    absl::StatusOr<int64_t> n = pool.Transact([&table](pqxx::work& tx) -> absl::StatusOr<int64_t> {
      return tx.exec1("SELECT count(*) FROM " + table)[0].as<int64_t>();
    });
    EXPECT_THAT(n, IsOk());
    return n.ok() ? *n : -1;
  }

  // Runs `n` transactions at once, so that the pool holds `n` open connections afterwards.
  static void OpenConnections(PgPool& pool, int n) {
    std::atomic<int> inside{0};
    std::vector<absl::Status> statuses(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        statuses[i] = pool.Run([&](pqxx::work& tx) {
          tx.exec("SELECT 1");
          ++inside;
          WaitUntil([&] { return inside.load() >= n; }, absl::Seconds(10));
          return absl::OkStatus();
        });
      });
    }
    for (std::thread& t : threads) t.join();
    for (const absl::Status& s : statuses) EXPECT_THAT(s, IsOk());
  }

  static inline ndx::testing::PostgresServer* server_ = nullptr;
  static inline absl::Status* setup_ = nullptr;
};

TEST_F(PgPoolTest, RoundTrip) {
  std::unique_ptr<PgPool> pool = MakePool();
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool,
                   "DROP TABLE IF EXISTS round_trip;"
                   "CREATE TABLE round_trip (id bigint PRIMARY KEY, name text NOT NULL)"),
              IsOk());
  ASSERT_THAT(pool->Run([](pqxx::work& tx) {
    tx.exec_params("INSERT INTO round_trip (id, name) VALUES ($1, $2)", 1, "alpha");
    tx.exec_params("INSERT INTO round_trip (id, name) VALUES ($1, $2)", 2, std::string("beta"));
    return absl::OkStatus();
  }),
              IsOk());

  using Rows = std::vector<std::pair<int64_t, std::string>>;
  absl::StatusOr<Rows> rows = pool->Transact([](pqxx::work& tx) -> absl::StatusOr<Rows> {
    Rows out;
    for (const pqxx::row& row :
         tx.exec_params("SELECT id, name FROM round_trip WHERE id >= $1 ORDER BY id", 1)) {
      out.emplace_back(row[0].as<int64_t>(), row[1].as<std::string>());
    }
    return out;
  });
  ASSERT_THAT(rows, IsOk());
  EXPECT_THAT(*rows, ElementsAre(Pair(1, "alpha"), Pair(2, "beta")));
}

TEST_F(PgPoolTest, FailingStatementRollsBackTheTransaction) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 1});
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool, "DROP TABLE IF EXISTS rollback_t; CREATE TABLE rollback_t (id int)"),
              IsOk());

  const absl::Status status = pool->Run([](pqxx::work& tx) {
    tx.exec("INSERT INTO rollback_t VALUES (1)");
    tx.exec("SELECT 1 / 0");
    return absl::OkStatus();
  });
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr("postgres statement failed"), HasSubstr("SQLSTATE 22012"),
                             HasSubstr("division by zero"), HasSubstr("SELECT 1 / 0"))));
  EXPECT_EQ(SqlStateOf(status), "22012");
  // The same (only) connection is usable again, and the insert was rolled back.
  EXPECT_EQ(CountRows(*pool, "rollback_t"), 0);
}

TEST_F(PgPoolTest, ErrorStatusOrExceptionFromFnRollsBack) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 1});
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool, "DROP TABLE IF EXISTS fn_error_t; CREATE TABLE fn_error_t (id int)"),
              IsOk());

  EXPECT_EQ(pool->Run([](pqxx::work& tx) {
    tx.exec("INSERT INTO fn_error_t VALUES (1)");
    return absl::NotFoundError("execution e1 not found");
  }),
            absl::NotFoundError("execution e1 not found"));
  EXPECT_THAT(pool->Run([](pqxx::work& tx) -> absl::Status {
    tx.exec("INSERT INTO fn_error_t VALUES (2)");
    throw std::runtime_error("bug in fn");
  }),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("bug in fn")));
  EXPECT_EQ(CountRows(*pool, "fn_error_t"), 0);
}

TEST_F(PgPoolTest, UniqueViolationIsAlreadyExists) {
  std::unique_ptr<PgPool> pool = MakePool();
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(
      Exec(*pool, "DROP TABLE IF EXISTS unique_t; CREATE TABLE unique_t (id text PRIMARY KEY)"),
      IsOk());
  auto insert = [&] {
    return pool->Run([](pqxx::work& tx) {
      tx.exec_params("INSERT INTO unique_t (id) VALUES ($1)", "e1");
      return absl::OkStatus();
    });
  };
  ASSERT_THAT(insert(), IsOk());
  const absl::Status status = insert();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAlreadyExists,
                               AllOf(HasSubstr("SQLSTATE 23505"), HasSubstr("unique_t_pkey"))));
  EXPECT_EQ(SqlStateOf(status), "23505");
}

TEST_F(PgPoolTest, SerializationFailureIsAborted) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 2});
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool,
                   "DROP TABLE IF EXISTS serial_t;"
                   "CREATE TABLE serial_t (id int PRIMARY KEY, v int NOT NULL);"
                   "INSERT INTO serial_t VALUES (1, 0)"),
              IsOk());

  // The first transaction takes its snapshot, a second one updates the row and commits, then the
  // first updates the same row: REPEATABLE READ must refuse (SQLSTATE 40001).
  absl::Notification snapshot_taken;
  absl::Notification other_committed;
  absl::Status first;
  std::thread t([&] {
    first = pool->Run([&](pqxx::work& tx) {
      tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      tx.exec("SELECT v FROM serial_t WHERE id = 1");
      snapshot_taken.Notify();
      other_committed.WaitForNotificationWithTimeout(absl::Seconds(30));
      tx.exec("UPDATE serial_t SET v = v + 1 WHERE id = 1");
      return absl::OkStatus();
    });
  });
  const bool ready = snapshot_taken.WaitForNotificationWithTimeout(absl::Seconds(30));
  EXPECT_TRUE(ready);
  if (ready) {
    EXPECT_THAT(Exec(*pool, "UPDATE serial_t SET v = v + 10 WHERE id = 1"), IsOk());
  }
  other_committed.Notify();
  t.join();
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kAborted, HasSubstr("could not serialize")));
  EXPECT_EQ(SqlStateOf(first), "40001");
}

TEST_F(PgPoolTest, RaisedTransactionRollbackStatesAreAborted) {
  std::unique_ptr<PgPool> pool = MakePool();
  ASSERT_NE(pool, nullptr);
  for (const char* sqlstate : {"40001", "40P01"}) {
    const absl::Status status =
        Exec(*pool, absl::StrCat("DO $$ BEGIN RAISE EXCEPTION 'retry me' USING ERRCODE = '",
                                 sqlstate, "'; END $$"));
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted, HasSubstr("retry me")));
    EXPECT_EQ(SqlStateOf(status), sqlstate);
  }
}

TEST_F(PgPoolTest, StaleEpochRaisedByPlpgsqlIsAborted) {
  std::unique_ptr<PgPool> pool = MakePool();
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool, R"sql(
    DROP TABLE IF EXISTS leases;
    CREATE TABLE leases (task_id text PRIMARY KEY, epoch bigint NOT NULL, result text);
    INSERT INTO leases VALUES ('t1', 4, NULL);
    CREATE OR REPLACE FUNCTION complete_task(p_task text, p_epoch bigint, p_result text)
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      v_epoch bigint;
    BEGIN
      SELECT epoch INTO v_epoch FROM leases WHERE task_id = p_task FOR UPDATE;
      IF v_epoch IS DISTINCT FROM p_epoch THEN
        RAISE EXCEPTION 'stale lease epoch % for task % (current %)', p_epoch, p_task, v_epoch
          USING ERRCODE = 'NDX01';
      END IF;
      UPDATE leases SET result = p_result WHERE task_id = p_task;
    END $$;
  )sql"),
              IsOk());
  auto complete = [&](int64_t epoch) {
    return pool->Run([epoch](pqxx::work& tx) {
      tx.exec_params("SELECT complete_task($1, $2, $3)", "t1", epoch, "done");
      return absl::OkStatus();
    });
  };

  const absl::Status stale = complete(3);
  EXPECT_THAT(stale, StatusIs(absl::StatusCode::kAborted,
                              AllOf(HasSubstr("SQLSTATE NDX01"),
                                    HasSubstr("stale lease epoch 3 for task t1 (current 4)"))));
  EXPECT_EQ(SqlStateOf(stale), kStaleEpochSqlState);
  EXPECT_THAT(complete(4), IsOk());
  absl::StatusOr<std::string> result =
      pool->Transact([](pqxx::work& tx) -> absl::StatusOr<std::string> {
        return tx.exec1("SELECT result FROM leases WHERE task_id = 't1'")[0].as<std::string>();
      });
  EXPECT_THAT(result, IsOk());
  EXPECT_EQ(result.value_or(""), "done");
}

TEST_F(PgPoolTest, StatementTimeoutIsDeadlineExceeded) {
  std::unique_ptr<PgPool> pool =
      MakePool({.size = 1, .statement_timeout = absl::Milliseconds(200)});
  ASSERT_NE(pool, nullptr);
  const absl::Time start = absl::Now();
  const absl::Status status = pool->Run([](pqxx::work& tx) {
    tx.exec("SELECT pg_sleep(30)");
    return absl::OkStatus();
  });
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               AllOf(HasSubstr("SQLSTATE 57014"), HasSubstr("pg_sleep"))));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // The canceled statement does not cost the connection.
  EXPECT_THAT(pool->Ping(), IsOk());
}

TEST_F(PgPoolTest, AutocommitKeepsStatementsBeforeAnError) {
  std::unique_ptr<PgPool> pool = MakePool();
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool, "DROP TABLE IF EXISTS autocommit_t; CREATE TABLE autocommit_t (id int)"),
              IsOk());
  EXPECT_THAT(pool->RunAutocommit([](pqxx::nontransaction& tx) {
    tx.exec("INSERT INTO autocommit_t VALUES (1)");
    return absl::InternalError("after the insert");
  }),
              StatusIs(absl::StatusCode::kInternal, "after the insert"));
  EXPECT_EQ(CountRows(*pool, "autocommit_t"), 1);

  // What cannot run in a transaction runs here.
  const std::string db = absl::StrCat(DatabaseName(), "_extra");
  EXPECT_THAT(Exec(*pool, absl::StrCat("CREATE DATABASE ", db)),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("SQLSTATE 25001")));
  EXPECT_THAT(pool->RunAutocommit([&db](pqxx::nontransaction& tx) {
    tx.exec("CREATE DATABASE " + db);
    tx.exec("DROP DATABASE " + db);
    return absl::OkStatus();
  }),
              IsOk());
}

TEST_F(PgPoolTest, ConcurrentUseWithFewerConnectionsThanThreads) {
  constexpr int kConnections = 2;
  constexpr int kThreads = 8;
  constexpr int kIncrementsPerThread = 20;
  std::unique_ptr<PgPool> pool =
      MakePool({.size = kConnections, .acquire_timeout = absl::Seconds(30)});
  ASSERT_NE(pool, nullptr);
  ASSERT_THAT(Exec(*pool,
                   "DROP TABLE IF EXISTS counter_t;"
                   "CREATE TABLE counter_t (n int NOT NULL); INSERT INTO counter_t VALUES (0)"),
              IsOk());

  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kIncrementsPerThread; ++j) {
        const absl::Status status = pool->Run([&](pqxx::work& tx) {
          const int now = ++in_flight;
          int seen = max_in_flight.load();
          while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
          }
          tx.exec("UPDATE counter_t SET n = n + 1");
          --in_flight;
          return absl::OkStatus();
        });
        if (!status.ok()) {
          ++failures;
          ADD_FAILURE() << status;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(max_in_flight.load(), kConnections);
  absl::StatusOr<int64_t> n = pool->Transact([](pqxx::work& tx) -> absl::StatusOr<int64_t> {
    return tx.exec1("SELECT n FROM counter_t")[0].as<int64_t>();
  });
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, kThreads * kIncrementsPerThread);
}

TEST_F(PgPoolTest, AcquireTimesOutWhenAllConnectionsAreBusy) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 1, .acquire_timeout = absl::Milliseconds(200)});
  ASSERT_NE(pool, nullptr);
  absl::Notification holding;
  absl::Notification release;
  std::thread holder([&] {
    EXPECT_THAT(pool->Run([&](pqxx::work& tx) {
      tx.exec("SELECT 1");
      holding.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(30));
      return absl::OkStatus();
    }),
                IsOk());
  });
  const bool held = holding.WaitForNotificationWithTimeout(absl::Seconds(30));
  EXPECT_TRUE(held);
  if (held) {
    const absl::Time start = absl::Now();
    EXPECT_THAT(pool->Ping(),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no connection became free")));
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  }
  release.Notify();
  holder.join();
  EXPECT_THAT(pool->Ping(), IsOk());
}

TEST_F(PgPoolTest, SurvivesServerRestart) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 3, .connect_timeout = absl::Seconds(2)});
  ASSERT_NE(pool, nullptr);
  // The fixture runs with synchronous_commit=off, so a commit just before a kill -9 can be lost
  // in crash recovery; this one must survive the kill.
  ASSERT_THAT(Exec(*pool,
                   "SET LOCAL synchronous_commit = on;"
                   "DROP TABLE IF EXISTS restart_t; CREATE TABLE restart_t (id int)"),
              IsOk());
  OpenConnections(*pool, 3);
  auto insert = [&](int id) {
    return pool->Run([id](pqxx::work& tx) {
      tx.exec_params("INSERT INTO restart_t VALUES ($1)", id);
      return absl::OkStatus();
    });
  };

  server_->Kill();
  const absl::Time start = absl::Now();
  EXPECT_THAT(insert(1), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(pool->Ping(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr("postgres connect to postgresql://")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // refused at once, no hang

  ASSERT_THAT(server_->Restart(), IsOk());
  EXPECT_TRUE(WaitUntil([&] { return pool->Ping().ok(); }, absl::Seconds(20)));
  for (int id = 2; id < 8; ++id) EXPECT_THAT(insert(id), IsOk()) << id;
  OpenConnections(*pool, 3);
  EXPECT_EQ(CountRows(*pool, "restart_t"), 6);
}

TEST_F(PgPoolTest, StaleIdleConnectionsAreReplacedWithoutAFailedCall) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 3});
  ASSERT_NE(pool, nullptr);
  OpenConnections(*pool, 3);

  server_->Kill();
  ASSERT_THAT(server_->Restart(), IsOk());
  // All three idle connections are dead now; no call may see that.
  EXPECT_THAT(pool->Ping(), IsOk());
  EXPECT_THAT(Exec(*pool, "SELECT 1"), IsOk());
  OpenConnections(*pool, 3);
}

TEST_F(PgPoolTest, ConnectionLostMidTransactionIsUnavailable) {
  std::unique_ptr<PgPool> pool = MakePool({.size = 1});
  ASSERT_NE(pool, nullptr);
  std::unique_ptr<PgPool> admin = MakePool({.size = 1});
  ASSERT_NE(admin, nullptr);
  absl::Notification inside;
  absl::Notification killed;
  absl::Status status;
  std::atomic<int> backend{0};
  std::thread t([&] {
    status = pool->Run([&](pqxx::work& tx) {
      backend = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
      inside.Notify();
      killed.WaitForNotificationWithTimeout(absl::Seconds(30));
      tx.exec("SELECT 2");
      return absl::OkStatus();
    });
  });
  EXPECT_TRUE(inside.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // The server ends this backend while its transaction is open (a killed postmaster's orphaned
  // backends may linger long enough to answer, so end the backend itself).
  ASSERT_THAT(admin->RunAutocommit([&](pqxx::nontransaction& tx) {
    tx.exec("SELECT pg_terminate_backend(" + std::to_string(backend.load()) + ")");
    return absl::OkStatus();
  }),
              IsOk());
  killed.Notify();
  t.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("postgres statement")));
  // The pool recovers with a new connection.
  EXPECT_TRUE(WaitUntil([&] { return pool->Ping().ok(); }, absl::Seconds(10)));
}

// A TCP port on 127.0.0.1 that accepts connections into its backlog but never answers: a server
// that hangs during the handshake.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(PgPoolUnreachable, ClosedPortIsUnavailableQuickly) {
  const int port = ndx::testing::FreePort();
  absl::StatusOr<std::unique_ptr<PgPool>> pool =
      PgPool::Create({.conninfo = absl::StrCat("postgresql://postgres@127.0.0.1:", port, "/ndx")});
  ASSERT_THAT(pool, IsOk());
  const absl::Time start = absl::Now();
  EXPECT_THAT((*pool)->Run([](pqxx::work&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(absl::StrCat("postgres connect to postgresql://postgres@"
                                                    "127.0.0.1:",
                                                    port, "/ndx failed")),
                             HasSubstr("Connection refused"))));
  EXPECT_THAT((*pool)->Ping(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(PgPoolUnreachable, ConnectTimeoutIsHonoured) {
  SilentListener listener;
  ASSERT_NE(listener.port(), 0);
  absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(
      {.conninfo = absl::StrCat("host=127.0.0.1 port=", listener.port(), " dbname=ndx"),
       .connect_timeout = absl::Seconds(2)});
  ASSERT_THAT(pool, IsOk());
  const absl::Time start = absl::Now();
  EXPECT_THAT((*pool)->Ping(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("timeout")));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, absl::Milliseconds(1500));
  EXPECT_LT(elapsed, absl::Seconds(6));
}

TEST(PgPoolUnreachable, PasswordNeverAppearsInErrors) {
  const int port = ndx::testing::FreePort();
  const std::string password = "s3cr3t-Pa55";
  for (const std::string& conninfo : {
           absl::StrCat("postgresql://ndx_user:", password, "@127.0.0.1:", port, "/ndx"),
           absl::StrCat("postgresql://ndx_user:", "s3cr3t%2DPa55", "@127.0.0.1:", port, "/ndx"),
           absl::StrCat("postgresql://ndx_user@127.0.0.1:", port, "/ndx?password=", password),
           absl::StrCat("host=127.0.0.1 port=", port, " user=ndx_user password='", password,
                        "' dbname=ndx"),
       }) {
    absl::StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create({.conninfo = conninfo});
    ASSERT_THAT(pool, IsOk());
    EXPECT_THAT((*pool)->redacted_conninfo(), Not(HasSubstr("s3cr3t")));
    const absl::Status status = (*pool)->Run([](pqxx::work&) { return absl::OkStatus(); });
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                                 AllOf(HasSubstr("ndx_user"), HasSubstr("***"),
                                       Not(HasSubstr("s3cr3t")), Not(HasSubstr("Pa55")))))
        << conninfo;
  }
}

}  // namespace
}  // namespace ndx::pg
