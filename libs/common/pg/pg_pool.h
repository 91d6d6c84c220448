// File: pg_pool.h
//
// ndx::pg::PgPool: a small, thread-safe pool of libpqxx 6 connections to PostgreSQL. It runs a
// caller's function inside a transaction and returns absl::Status instead of throwing: every
// exception thrown while the pool works (libpqxx's, or the function's own) is caught inside the
// pool and mapped to a status code by one function, StatusFromException() (STYLE.md rule 5).
//
//   NDX_ASSIGN_OR_RETURN(std::unique_ptr<ndx::pg::PgPool> pool,
//                        ndx::pg::PgPool::Create({.conninfo = database_url, .size = 8}));
//   absl::Status s = pool->Run([&](pqxx::work& tx) {
//     tx.exec_params("INSERT INTO executions (id, state) VALUES ($1, $2)", id, "queued");
//     return absl::OkStatus();
//   });
//   absl::StatusOr<int64_t> n = pool->Transact([&](pqxx::work& tx) -> absl::StatusOr<int64_t> {
//     return tx.exec1("SELECT count(*) FROM executions")[0].as<int64_t>();
//   });
//
// Connections are opened lazily, at most `size` of them. A connection that broke (server restart,
// network loss, backend terminated) is dropped and a new one is opened on a later call, so one
// pool survives a PostgreSQL restart: calls fail with kUnavailable while the server is down and
// succeed again once it is back.
//
// Error mapping (StatusFromException; the SQLSTATE, when known, is in the message and in a payload
// that SqlStateOf() reads):
//
//   what was thrown                                   SQLSTATE               code
//   pqxx::broken_connection: connect failed (refused,  08xxx, 53300           kUnavailable
//     timeout, bad password, bad host), connection
//     lost, too many connections
//   pqxx::in_doubt_error: connection lost during       -                      kUnavailable (the
//     COMMIT                                                                   outcome is unknown)
//   class 57 but 57014: server shutting down or        57P01 57P02 57P03      kUnavailable
//     starting; class 53: server out of resources      53xxx
//   pqxx::serialization_failure, deadlock_detected,    40001 40P01 40xxx      kAborted (retry the
//     other transaction rollbacks                                              whole transaction)
//   lock not available (NOWAIT, lock_timeout)          55P03                  kAborted
//   ndx stale lease epoch (see below)                  NDX01                  kAborted
//   pqxx::unique_violation                             23505                  kAlreadyExists
//   other integrity violations: not null, foreign      23502 23503 23514      kFailedPrecondition
//     key, check, exclusion, restrict                  23P01 23001 23000      (the data or state
//                                                                              must change first)
//   query canceled: statement_timeout expired          57014                  kDeadlineExceeded
//   any other pqxx::sql_error (syntax, division by     e.g. 42601 22012       kInternal
//     zero, undefined table, ...)
//   other libpqxx errors (conversion_error, usage_     -                      kInternal
//     error, unexpected_rows from exec1, ...), any
//     std::exception thrown by the caller's function
//   anything else                                      -                      kUnknown
//
// Rejections decided by SQL itself (stale lease epoch). A trigger or function that must refuse a
// write, e.g. from a worker whose lease epoch is stale, raises SQLSTATE 'NDX01'
// (kStaleEpochSqlState); the pool maps it to kAborted, and the caller tells it apart from a
// retryable serialization failure (also kAborted) with SqlStateOf():
//
//   RAISE EXCEPTION 'stale lease epoch % for task %', epoch, task_id USING ERRCODE = 'NDX01';
//
//   if (ndx::pg::SqlStateOf(s) == ndx::pg::kStaleEpochSqlState) { /* lease lost: stop */ }
//
// Class 'ND' is not used by PostgreSQL; the project keeps its own SQLSTATEs there ('NDX01', then
// 'NDX02', ...), each added to StatusFromException with a test. Do not reuse '40001' for such
// rejections: the caller could not tell "retry" from "you lost the lease".
//
// Messages say what failed (connect, begin, statement, commit), carry the SQLSTATE, the server's
// message and the start of the statement, and never the password of the conninfo: connect errors
// name the server by RedactedConninfo(), and every message the pool returns is scrubbed of the
// password (libpq echoes raw URI parts in some parse errors).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ndx::pg {

// The SQLSTATE that SQL raises to reject a write from a worker whose lease epoch is stale
// (`RAISE ... USING ERRCODE = 'NDX01'`). Maps to kAborted.
inline constexpr absl::string_view kStaleEpochSqlState = "NDX01";

// The payload type URL under which statuses made by this library carry the SQLSTATE.
inline constexpr absl::string_view kSqlStatePayloadUrl = "type.googleapis.com/ndx.pg.SqlState";

struct PgPoolOptions {
  // libpq connection string (DATABASE_URL): a URI such as
  // "postgresql://user:pass@host:5432/db?sslmode=disable" or key=value pairs such as
  // "host=127.0.0.1 port=5432 dbname=ndx user=ndx password=...". Empty means libpq's defaults
  // (PGHOST, PGPORT, ... environment variables).
  std::string conninfo;
  // Maximum number of open connections. They are opened on demand. At least 1.
  int size = 4;
  // Passed to libpq as connect_timeout (overriding one in `conninfo`), rounded up to whole
  // seconds; libpq waits at least 2 s. Must be positive.
  absl::Duration connect_timeout = absl::Seconds(5);
  // How long a call waits for a connection when all `size` are in use. Zero means do not wait.
  absl::Duration acquire_timeout = absl::Seconds(5);
  // If set (and positive), each connection runs `SET statement_timeout` with it (rounded up to
  // whole milliseconds): a statement running longer is canceled and the call returns
  // kDeadlineExceeded. Unset means the server's setting.
  std::optional<absl::Duration> statement_timeout;
};

// PgPool: runs functions on pooled PostgreSQL connections.
//
// Thread-safe: any number of threads may call the public methods concurrently; each call holds
// one connection for its duration, and waits up to `acquire_timeout` when all are busy. The
// function runs on the calling thread. It must not call back into the same pool (it would need a
// second connection and may wait for itself until acquire_timeout), nor keep the transaction or
// connection after returning.
class PgPool final {
 public:
  // Checks the options and returns a pool that has not connected yet (it connects on first use).
  // Returns kInvalidArgument if size < 1, connect_timeout <= 0, acquire_timeout < 0,
  // statement_timeout <= 0, or conninfo does not parse (the message is free of the password).
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(PgPoolOptions options);

  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;
  // Closes the idle connections. REQUIRES: no call is running.
  ~PgPool();

  // Runs `fn` in a READ COMMITTED read-write transaction (pqxx::work) on a pooled connection. If
  // fn returns OK the transaction is committed, otherwise it is rolled back. fn may throw (tx.exec
  // throws on any SQL error): the transaction is rolled back and the exception is mapped. For
  // another isolation level run `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE` (or REPEATABLE
  // READ) as fn's first statement. fn must not swallow an exception from tx and then return OK:
  // PostgreSQL answers COMMIT of a failed transaction with a silent rollback.
  //
  // A reused connection found dead before fn ran (the server restarted while it was idle) is
  // dropped and the call is retried on another connection; fn never runs twice.
  //
  // Returns OK if fn returned OK and the commit succeeded; fn's own status if it returned an error;
  // else the mapped error (file comment): kUnavailable (cannot connect, connection lost, no free
  // connection within acquire_timeout), kAborted, kAlreadyExists, kFailedPrecondition,
  // kDeadlineExceeded, kInternal, kUnknown.
  absl::Status Run(const std::function<absl::Status(pqxx::work&)>& fn);

  // Run() for a function that returns a value: fn(pqxx::work&) returns absl::StatusOr<T>, and so
  // does Transact. Commits when fn returned a value. Returns fn's value, fn's error, or the errors
  // of Run().
  template <typename Fn>
  std::invoke_result_t<Fn&, pqxx::work&> Transact(Fn&& fn);

  // Runs `fn` without a transaction (pqxx::nontransaction): each statement commits by itself, and
  // nothing is rolled back when fn fails. For statements that cannot run in a transaction (CREATE
  // DATABASE, CREATE INDEX CONCURRENTLY, VACUUM) and for single-statement work. Returns fn's
  // status, or the errors of Run() (a statement may have run before a connection was lost).
  absl::Status RunAutocommit(const std::function<absl::Status(pqxx::nontransaction&)>& fn);

  // Runs `SELECT 1` on a pooled connection, for readiness checks. Returns OK or the errors of
  // Run() (kUnavailable while the server is down).
  absl::Status Ping();

  // The conninfo with its password replaced by "***", for logs.
  const std::string& redacted_conninfo() const { return redacted_conninfo_; }

 private:
  // What a call was doing when it failed; names the failure in messages and tells whether fn ran.
  enum class Stage { kBegin, kStatement, kAutocommitStatement, kCommit };
  // A pooled connection lent to one call.
  struct Lease {
    std::unique_ptr<pqxx::connection> conn;
    bool reused = false;  // was idle in the pool (may have died meanwhile), not freshly opened
  };
  using Body = std::function<absl::Status(pqxx::connection&, Stage&)>;

  PgPool(PgPoolOptions options, std::string connect_string, std::string redacted_conninfo,
         std::vector<std::string> secrets);

  static absl::string_view ToString(Stage stage);

  // Runs `body` on a leased connection: maps what it throws, returns the connection or drops it
  // if it broke, and retries once per reused connection found dead at Stage::kBegin.
  absl::Status WithConnection(const Body& body);
  absl::StatusOr<Lease> Acquire();
  void Release(Lease lease);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect();
  // Replaces any secret of the conninfo in `status`'s message by "***".
  absl::Status Scrub(absl::Status status) const;
  bool CanAcquire() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PgPoolOptions options_;
  const std::string connect_string_;     // conninfo + connect_timeout
  const std::string redacted_conninfo_;  // for messages and logs
  const std::vector<std::string> secrets_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + lent + being opened
};

// Returns `conninfo` (URI or key=value form) with every password replaced by "***": the one in
// the URI's user info, a `password` URI query parameter, and `password=` pairs. Anything after a
// point where a key=value string stops parsing is replaced too. For logs and messages.
std::string RedactedConninfo(absl::string_view conninfo);

// The one place where exceptions become statuses (see the table in the file comment). `error` is
// the caught exception (std::current_exception() in a catch block); `what` names what failed and
// starts the message ("postgres statement failed"). The message adds the SQLSTATE, the server's
// message and the first 200 characters of the statement; the SQLSTATE is also attached as the
// kSqlStatePayloadUrl payload. `connection_lost` says the connection was found closed after the
// exception: any libpqxx error is then kUnavailable (libpqxx 6 reports a failed internal
// re-connect as a plain pqxx::failure). A null `error` gives kInternal.
absl::Status StatusFromException(std::exception_ptr error, absl::string_view what,
                                 bool connection_lost = false);

// The SQLSTATE carried by a status from this library ("" if none), e.g. "23505", "NDX01".
std::string SqlStateOf(const absl::Status& status);

namespace internal {

// Exposed for tests. The code for an SQLSTATE as the table in the file comment says.
absl::StatusCode StatusCodeForSqlState(absl::string_view sqlstate);

// Exposed for tests. `conninfo` with connect_timeout=`seconds` appended in its own syntax (a URI
// query parameter, or a key=value pair); libpq lets a later setting win.
std::string ConninfoWithConnectTimeout(absl::string_view conninfo, int seconds);

// Exposed for tests. The password strings found in `conninfo`, as written and decoded (percent-
// decoded or unquoted), longest first, for scrubbing messages.
std::vector<std::string> ConninfoSecrets(absl::string_view conninfo);

}  // namespace internal

template <typename Fn>
std::invoke_result_t<Fn&, pqxx::work&> PgPool::Transact(Fn&& fn) {
  using Result = std::invoke_result_t<Fn&, pqxx::work&>;
  static_assert(!std::is_same_v<Result, absl::Status>, "use Run() for functions returning Status");
  std::optional<Result> result;
  absl::Status status = Run([&](pqxx::work& tx) -> absl::Status {
    result.emplace(fn(tx));
    return result->status();
  });
  if (!status.ok()) return status;
  return *std::move(result);
}

}  // namespace ndx::pg
