#include "libs/common/pg/pg_pool.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>

#include <pqxx/except>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ndx::pg {
namespace {

constexpr char kRedacted[] = "***";
constexpr size_t kMaxQueryChars = 200;

bool IsUri(absl::string_view conninfo) {
  return absl::StartsWith(conninfo, "postgresql://") || absl::StartsWith(conninfo, "postgres://");
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Collapses runs of whitespace (libpq messages span lines: "ERROR:  ...\nDETAIL:  ...\n") into
// single spaces, so that a message stays on one log line.
std::string OneLine(absl::string_view text) {
  return absl::StrJoin(absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty()), " ");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A conninfo with its passwords replaced, and the passwords (as written and decoded).
struct Redaction {
  std::string redacted;
  std::vector<std::string> secrets;
};

void AddSecret(absl::string_view raw, std::string decoded, Redaction& r) {
  if (!raw.empty()) r.secrets.emplace_back(raw);
  if (!decoded.empty()) r.secrets.push_back(std::move(decoded));
}

// postgresql://[user[:password]@][host][:port][,...][/dbname][?param=value&...]
Redaction RedactUri(absl::string_view uri) {
  Redaction r;
  const size_t scheme_end = uri.find("://") + 3;
  r.redacted = std::string(uri.substr(0, scheme_end));
  absl::string_view rest = uri.substr(scheme_end);
  const size_t query_start = rest.find('?');
  absl::string_view before_query = rest.substr(0, query_start);
  // The user info ends at an '@'. Taking the last one before the query (not libpq's first one
  // before a '/') over-redacts rather than leaks when the password holds an unencoded '@' or '/'.
  const size_t at = before_query.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = before_query.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (colon != absl::string_view::npos && colon + 1 < userinfo.size()) {
      absl::string_view password = userinfo.substr(colon + 1);
      absl::StrAppend(&r.redacted, userinfo.substr(0, colon + 1), kRedacted);
      AddSecret(password, PercentDecode(password), r);
    } else {
      absl::StrAppend(&r.redacted, userinfo);
    }
    absl::StrAppend(&r.redacted, before_query.substr(at));
  } else {
    absl::StrAppend(&r.redacted, before_query);
  }
  if (query_start == absl::string_view::npos) return r;

  std::vector<std::string> params;
  for (absl::string_view param : absl::StrSplit(rest.substr(query_start + 1), '&')) {
    if (absl::StartsWith(param, "password=")) {
      absl::string_view password = param.substr(sizeof("password=") - 1);
      AddSecret(password, PercentDecode(password), r);
      params.push_back(absl::StrCat("password=", kRedacted));
    } else {
      params.emplace_back(param);
    }
  }
  absl::StrAppend(&r.redacted, "?", absl::StrJoin(params, "&"));
  return r;
}

// keyword = value pairs separated by whitespace; a value is either single-quoted or runs to the
// next whitespace, and a backslash escapes the next character (libpq's conninfo_parse rules).
Redaction RedactKeyValue(absl::string_view s) {
  Redaction r;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const size_t token_start = i;
    while (i < n && IsSpace(s[i])) ++i;
    if (i == n) {
      absl::StrAppend(&r.redacted, s.substr(token_start));
      break;
    }
    const size_t key_start = i;
    while (i < n && s[i] != '=' && !IsSpace(s[i])) ++i;
    const absl::string_view key = s.substr(key_start, i - key_start);
    while (i < n && IsSpace(s[i])) ++i;
    if (i == n || s[i] != '=') {
      // libpq rejects this; hide the rest rather than guess what it holds.
      absl::StrAppend(&r.redacted, s.substr(token_start, key_start - token_start), kRedacted);
      return r;
    }
    ++i;
    while (i < n && IsSpace(s[i])) ++i;
    const size_t value_start = i;
    std::string decoded;
    bool closed = true;
    if (i < n && s[i] == '\'') {
      closed = false;
      ++i;
      while (i < n) {
        if (s[i] == '\\' && i + 1 < n) {
          decoded += s[i + 1];
          i += 2;
        } else if (s[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          decoded += s[i++];
        }
      }
    } else {
      while (i < n && !IsSpace(s[i])) {
        if (s[i] == '\\' && i + 1 < n) {
          decoded += s[i + 1];
          i += 2;
        } else {
          decoded += s[i++];
        }
      }
    }
    const absl::string_view raw_value = s.substr(value_start, i - value_start);
    if (!closed) {  // unterminated quote: the rest of the string is the value
      absl::StrAppend(&r.redacted, s.substr(token_start, value_start - token_start), kRedacted);
      AddSecret(raw_value, "", r);
      return r;
    }
    if (key == "password") {
      absl::StrAppend(&r.redacted, s.substr(token_start, value_start - token_start), kRedacted);
      AddSecret(raw_value, std::move(decoded), r);
    } else {
      absl::StrAppend(&r.redacted, s.substr(token_start, i - token_start));
    }
  }
  return r;
}

Redaction Redact(absl::string_view conninfo) {
  return IsUri(conninfo) ? RedactUri(conninfo) : RedactKeyValue(conninfo);
}

// Replaces every secret in the message; keeps the code and the payloads.
absl::Status ScrubSecrets(absl::Status status, const std::vector<std::string>& secrets) {
  if (status.ok() || secrets.empty()) return status;
  std::string message(status.message());
  for (const std::string& secret : secrets) {  // longest first, so no secret is half-replaced
    message = absl::StrReplaceAll(message, {{secret, kRedacted}});
  }
  if (message == status.message()) return status;
  absl::Status scrubbed(status.code(), message);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { scrubbed.SetPayload(url, payload); });
  return scrubbed;
}

// The mapped status for an error that carries an SQLSTATE.
absl::Status SqlStatus(absl::StatusCode code, absl::string_view what, absl::string_view sqlstate,
                       absl::string_view message, absl::string_view query) {
  std::string text = absl::StrCat(what, ": SQLSTATE ", sqlstate, ": ", OneLine(message));
  if (!query.empty()) {
    std::string statement = OneLine(query);
    if (statement.size() > kMaxQueryChars) {
      statement.resize(kMaxQueryChars);
      statement += "...";
    }
    absl::StrAppend(&text, " [statement: ", statement, "]");
  }
  absl::Status status(code, text);
  status.SetPayload(kSqlStatePayloadUrl, absl::Cord(sqlstate));
  return status;
}

// Whether `conn` can still be used: reads what the server sent meanwhile, without blocking. An
// idle connection whose server went away has an EOF waiting; reading it marks the connection bad.
// It takes two reads: a backend that exits (postmaster killed, admin shutdown) first sends a FATAL
// message, which the first read only drains; the second one meets the EOF.
bool IsAlive(pqxx::connection& conn) {
  try {
    conn.get_notifs();
    conn.get_notifs();
  } catch (const std::exception&) {
    return false;
  }
  return conn.is_open();
}

std::string StageName(absl::string_view stage) {
  return absl::StrCat("postgres ", stage, " failed");
}

}  // namespace

namespace internal {

absl::StatusCode StatusCodeForSqlState(absl::string_view sqlstate) {
  if (sqlstate == kStaleEpochSqlState) return absl::StatusCode::kAborted;
  if (sqlstate == "23505") return absl::StatusCode::kAlreadyExists;
  if (sqlstate == "57014") return absl::StatusCode::kDeadlineExceeded;
  if (sqlstate == "55P03") return absl::StatusCode::kAborted;
  const absl::string_view sqlclass = sqlstate.substr(0, 2);
  if (sqlclass == "40") return absl::StatusCode::kAborted;
  if (sqlclass == "23") return absl::StatusCode::kFailedPrecondition;
  if (sqlclass == "08" || sqlclass == "53" || sqlclass == "57") {
    return absl::StatusCode::kUnavailable;
  }
  return absl::StatusCode::kInternal;
}

std::string ConninfoWithConnectTimeout(absl::string_view conninfo, int seconds) {
  const std::string setting = absl::StrCat("connect_timeout=", seconds);
  if (IsUri(conninfo)) {
    const char* separator = "&";
    if (conninfo.find('?') == absl::string_view::npos) {
      separator = "?";
    } else if (absl::EndsWith(conninfo, "?") || absl::EndsWith(conninfo, "&")) {
      separator = "";
    }
    return absl::StrCat(conninfo, separator, setting);
  }
  if (std::all_of(conninfo.begin(), conninfo.end(), IsSpace)) return setting;
  return absl::StrCat(conninfo, " ", setting);
}

std::vector<std::string> ConninfoSecrets(absl::string_view conninfo) {
  std::vector<std::string> secrets = Redact(conninfo).secrets;
  // Also what libpq itself takes as the password, in case our scan read the string differently.
  const std::string copy(conninfo);
  char* error = nullptr;
  if (PQconninfoOption* options = PQconninfoParse(copy.c_str(), &error); options != nullptr) {
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (absl::string_view(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') {
        secrets.emplace_back(o->val);
      }
    }
    PQconninfoFree(options);
  }
  if (error != nullptr) PQfreemem(error);
  std::sort(secrets.begin(), secrets.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  secrets.erase(std::unique(secrets.begin(), secrets.end()), secrets.end());
  return secrets;
}

}  // namespace internal

std::string RedactedConninfo(absl::string_view conninfo) { return Redact(conninfo).redacted; }

absl::Status StatusFromException(std::exception_ptr error, absl::string_view what,
                                 bool connection_lost) {
  if (error == nullptr) return absl::InternalError(absl::StrCat(what, ": no exception"));
  try {
    std::rethrow_exception(error);
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(absl::StrCat(what, ": ", OneLine(e.what())));
  } catch (const pqxx::in_doubt_error& e) {
    return absl::UnavailableError(absl::StrCat(
        what, ": connection lost during COMMIT, the outcome is unknown: ", OneLine(e.what())));
  } catch (const pqxx::transaction_rollback& e) {
    // libpqxx 6 throws these for SQLSTATE class 40 without keeping the SQLSTATE: recover it from
    // the type. statement_completion_unknown derives from transaction_rollback too (40003).
    absl::string_view sqlstate = "40000";
    if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
      sqlstate = "40001";
    } else if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
      sqlstate = "40P01";
    } else if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
      sqlstate = "40003";
    }
    return SqlStatus(connection_lost ? absl::StatusCode::kUnavailable : absl::StatusCode::kAborted,
                     what, sqlstate, e.what(), "");
  } catch (const pqxx::sql_error& e) {
    // Unknown SQLSTATEs (our own 'NDX01' included) arrive as a plain sql_error: map the string.
    const absl::StatusCode code = connection_lost ? absl::StatusCode::kUnavailable
                                                  : internal::StatusCodeForSqlState(e.sqlstate());
    if (e.sqlstate().empty()) {
      return absl::Status(code, absl::StrCat(what, ": ", OneLine(e.what())));
    }
    return SqlStatus(code, what, e.sqlstate(), e.what(), e.query());
  } catch (const pqxx::failure& e) {
    // E.g. a failed re-connect inside libpqxx; with the connection gone it is an outage.
    return absl::Status(
        connection_lost ? absl::StatusCode::kUnavailable : absl::StatusCode::kInternal,
        absl::StrCat(what, ": ", OneLine(e.what())));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", OneLine(e.what())));
  } catch (...) {
    return absl::UnknownError(absl::StrCat(what, ": an exception not derived from std::exception"));
  }
}

std::string SqlStateOf(const absl::Status& status) {
  const absl::optional<absl::Cord> payload = status.GetPayload(kSqlStatePayloadUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(PgPoolOptions options) {
  std::string redacted = RedactedConninfo(options.conninfo);
  std::vector<std::string> secrets = internal::ConninfoSecrets(options.conninfo);
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("postgres pool for ", redacted, ": ", why));
  };
  if (options.size < 1) return invalid(absl::StrCat("size must be at least 1, not ", options.size));
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return invalid("connect_timeout must be positive");
  }
  if (options.acquire_timeout < absl::ZeroDuration()) {
    return invalid("acquire_timeout must not be negative");
  }
  if (options.statement_timeout.has_value() && *options.statement_timeout <= absl::ZeroDuration()) {
    return invalid("statement_timeout must be positive when set");
  }
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.conninfo.c_str(), &error);
  if (parsed == nullptr) {
    std::string why = error != nullptr ? OneLine(error) : "out of memory";
    if (error != nullptr) PQfreemem(error);
    return ScrubSecrets(invalid(absl::StrCat("invalid conninfo: ", why)), secrets);
  }
  PQconninfoFree(parsed);
  if (error != nullptr) PQfreemem(error);

  const int timeout_seconds =
      static_cast<int>(std::ceil(absl::FDivDuration(options.connect_timeout, absl::Seconds(1))));
  std::string connect_string =
      internal::ConninfoWithConnectTimeout(options.conninfo, std::max(timeout_seconds, 1));
  return std::unique_ptr<PgPool>(new PgPool(std::move(options), std::move(connect_string),
                                            std::move(redacted), std::move(secrets)));
}

PgPool::PgPool(PgPoolOptions options, std::string connect_string, std::string redacted_conninfo,
               std::vector<std::string> secrets)
    : options_(std::move(options)),
      connect_string_(std::move(connect_string)),
      redacted_conninfo_(std::move(redacted_conninfo)),
      secrets_(std::move(secrets)) {}

PgPool::~PgPool() = default;

absl::Status PgPool::Run(const std::function<absl::Status(pqxx::work&)>& fn) {
  return WithConnection([&fn](pqxx::connection& conn, Stage& stage) -> absl::Status {
    pqxx::work tx(conn);  // sends BEGIN
    stage = Stage::kStatement;
    if (absl::Status status = fn(tx); !status.ok()) {
      return status;  // tx's destructor rolls back
    }
    stage = Stage::kCommit;
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status PgPool::RunAutocommit(const std::function<absl::Status(pqxx::nontransaction&)>& fn) {
  return WithConnection([&fn](pqxx::connection& conn, Stage& stage) -> absl::Status {
    pqxx::nontransaction tx(conn);
    stage = Stage::kAutocommitStatement;
    return fn(tx);
  });
}

absl::Status PgPool::Ping() {
  return RunAutocommit([](pqxx::nontransaction& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
}

absl::Status PgPool::WithConnection(const Body& body) {
  // Each retry drops one reused connection, so size + 1 attempts always reach a fresh one.
  const int max_attempts = options_.size + 1;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<Lease> lease = Acquire();
    if (!lease.ok()) return lease.status();
    Stage stage = Stage::kBegin;
    absl::Status status;
    try {
      status = body(*lease->conn, stage);
    } catch (...) {
      status = Scrub(StatusFromException(std::current_exception(), StageName(ToString(stage)),
                                         !lease->conn->is_open()));
    }
    // A reused connection that died while idle fails at BEGIN, before fn ran: try another one.
    const bool retry = !lease->conn->is_open() && stage == Stage::kBegin && lease->reused &&
                       attempt < max_attempts;
    Release(*std::move(lease));
    if (!retry) return status;
  }
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire() {
  const absl::Time deadline = absl::Now() + options_.acquire_timeout;
  while (true) {
    std::unique_ptr<pqxx::connection> conn;
    {
      absl::MutexLock lock(&mu_);
      if (!mu_.AwaitWithDeadline(absl::Condition(this, &PgPool::CanAcquire), deadline)) {
        return absl::UnavailableError(absl::StrCat(
            "postgres pool: no connection became free within ",
            absl::FormatDuration(options_.acquire_timeout), " (all ", options_.size, " in use)"));
      }
      if (!idle_.empty()) {
        conn = std::move(idle_.back());  // the most recently used: likeliest to be warm
        idle_.pop_back();
      } else {
        ++open_;  // reserve the slot; connect outside the lock
      }
    }
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> fresh = Connect();
      if (!fresh.ok()) {
        absl::MutexLock lock(&mu_);
        --open_;
        return fresh.status();
      }
      return Lease{*std::move(fresh), /*reused=*/false};
    }
    if (IsAlive(*conn)) return Lease{std::move(conn), /*reused=*/true};
    conn.reset();  // closes the socket, outside the lock
    absl::MutexLock lock(&mu_);
    --open_;
  }
}

// A broken connection is dropped, never repaired: libpqxx 6 would re-connect it silently on the
// next statement, even inside what the caller thinks is one session. (Known libpqxx 6.4 bug: a
// statement that meets a lost connection leaks its PGresult, about 2 KB, in make_result; fixed
// upstream in 7.x, jtv/libpqxx#500. LeakSanitizer runs need `leak:libpqxx` suppressed.)
void PgPool::Release(Lease lease) {
  if (lease.conn->is_open()) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(lease.conn));
    return;
  }
  lease.conn.reset();
  absl::MutexLock lock(&mu_);
  --open_;
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgPool::Connect() {
  try {
    auto conn = std::make_unique<pqxx::connection>(connect_string_);
    if (options_.statement_timeout.has_value()) {
      // set_variable (not a bare SET) so that libpqxx restores it if it ever re-connects itself.
      const int64_t ms =
          absl::ToInt64Milliseconds(absl::Ceil(*options_.statement_timeout, absl::Milliseconds(1)));
      conn->set_variable("statement_timeout", std::to_string(ms));
    }
    return conn;
  } catch (...) {
    return Scrub(StatusFromException(std::current_exception(),
                                     StageName(absl::StrCat("connect to ", redacted_conninfo_))));
  }
}

absl::Status PgPool::Scrub(absl::Status status) const {
  return ScrubSecrets(std::move(status), secrets_);
}

bool PgPool::CanAcquire() const { return !idle_.empty() || open_ < options_.size; }

absl::string_view PgPool::ToString(Stage stage) {
  switch (stage) {
    case Stage::kBegin:
      return "BEGIN";
    case Stage::kStatement:
      return "statement";
    case Stage::kAutocommitStatement:
      return "autocommit statement";
    case Stage::kCommit:
      return "COMMIT";
  }
  return "call";
}

}  // namespace ndx::pg
