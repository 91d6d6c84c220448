#include "libs/common/redis/redis_url.h"

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ndx::redis {
namespace {

// Every error names the part that is wrong but never quotes input that could be (or contain) a
// password: only fixed text and, for unknown query parameters, the parameter's name.
absl::Status UrlError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid Redis URL: ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding ('+' stays '+'). nullopt on a malformed escape.
std::optional<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

absl::StatusOr<std::string> Decode(absl::string_view in, absl::string_view what) {
  std::optional<std::string> decoded = PercentDecode(in);
  if (!decoded.has_value()) {
    return UrlError(absl::StrCat("invalid percent-encoding in the ", what,
                                 " (write '%' as %25; an escape is % and two hex digits)"));
  }
  return *std::move(decoded);
}

// A decimal number without sign, spaces or a leading '+'.
bool ParseDecimal(absl::string_view text, int64_t max, int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

absl::Status ParseDb(absl::string_view text, RedisOptions& options) {
  int64_t db = 0;
  if (!ParseDecimal(text, 1 << 30, &db)) {
    return UrlError("the database must be a non-negative integer (redis://host:port/2 or ?db=2)");
  }
  options.db = static_cast<int>(db);
  return absl::OkStatus();
}

absl::Status ParseTimeout(absl::string_view name, absl::string_view text, absl::Duration* out) {
  absl::Duration d;
  if (!absl::ParseDuration(std::string(text), &d) || d <= absl::ZeroDuration()) {
    return UrlError(absl::StrCat(name, " must be a positive duration such as 500ms or 2s"));
  }
  *out = d;
  return absl::OkStatus();
}

// Applies `query` (the text after '?'). `db_in_path` and `password_in_userinfo` catch values
// given twice.
absl::Status ParseQuery(absl::string_view query, bool db_in_path, bool password_in_userinfo,
                        RedisOptions& options) {
  std::vector<std::string> seen;
  for (absl::string_view piece : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = piece.find('=');
    if (eq == absl::string_view::npos) {
      return UrlError("every query parameter must be name=value");
    }
    std::string name = absl::AsciiStrToLower(piece.substr(0, eq));
    if (name == "username") name = "user";
    const absl::string_view raw_value = piece.substr(eq + 1);
    for (const std::string& s : seen) {
      if (s == name) return UrlError(absl::StrCat("query parameter '", name, "' is given twice"));
    }
    seen.push_back(name);
    if (name == "db") {
      if (db_in_path) return UrlError("the database is given both in the path and as ?db=");
      if (absl::Status s = ParseDb(raw_value, options); !s.ok()) return s;
    } else if (name == "password") {
      if (password_in_userinfo) {
        return UrlError("the password is given both before '@' and as ?password=");
      }
      absl::StatusOr<std::string> password = Decode(raw_value, "password");
      if (!password.ok()) return password.status();
      options.password = *std::move(password);
    } else if (name == "user") {
      absl::StatusOr<std::string> user = Decode(raw_value, "user name");
      if (!user.ok()) return user.status();
      options.username = *std::move(user);
    } else if (name == "client_name") {
      absl::StatusOr<std::string> client_name = Decode(raw_value, "client_name");
      if (!client_name.ok()) return client_name.status();
      options.client_name = *std::move(client_name);
    } else if (name == "connect_timeout") {
      if (absl::Status s = ParseTimeout(name, raw_value, &options.connect_timeout); !s.ok()) {
        return s;
      }
    } else if (name == "command_timeout") {
      if (absl::Status s = ParseTimeout(name, raw_value, &options.command_timeout); !s.ok()) {
        return s;
      }
    } else {
      return UrlError(absl::StrCat("unknown query parameter '", name,
                                   "' (known: db, password, user, client_name, connect_timeout, "
                                   "command_timeout)"));
    }
  }
  return absl::OkStatus();
}

// ACL credentials need both parts: `AUTH user password`.
absl::Status CheckCredentials(const RedisOptions& options) {
  if (!options.username.empty() && options.password.empty()) {
    return UrlError("a user name needs a password (redis://user:password@host)");
  }
  return absl::OkStatus();
}

// host[:port] or [v6]:port.
absl::Status ParseHostPort(absl::string_view hostport, RedisOptions& options) {
  absl::string_view host;
  std::optional<absl::string_view> port;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos) return UrlError("an IPv6 host lacks its closing ']'");
    host = hostport.substr(1, close - 1);
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return UrlError("only ':port' may follow an IPv6 host in brackets");
      port = after.substr(1);
    }
  } else {
    const size_t colon = hostport.find(':');
    if (colon != absl::string_view::npos &&
        hostport.find(':', colon + 1) != absl::string_view::npos) {
      return UrlError("an IPv6 host must be written in brackets, e.g. redis://[::1]:6379");
    }
    host = hostport.substr(0, colon);
    if (colon != absl::string_view::npos) port = hostport.substr(colon + 1);
  }
  if (host.empty()) return UrlError("the host is missing (redis://host[:port][/db])");
  options.host = std::string(host);
  if (port.has_value()) {
    int64_t value = 0;
    if (!ParseDecimal(*port, 65535, &value) || value == 0) {
      return UrlError("the port must be a number in 1..65535");
    }
    options.port = static_cast<int>(value);
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisOptions> ParseTcpUrl(absl::string_view rest) {
  RedisOptions options;
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // The user info ends at the last '@', so an unencoded '@' or '/' in a password still works.
  bool password_in_userinfo = false;
  if (const size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    const absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == absl::string_view::npos) {
      return UrlError("credentials must be written ':password@' or 'user:password@' (no ':')");
    }
    absl::StatusOr<std::string> user = Decode(userinfo.substr(0, colon), "user name");
    if (!user.ok()) return user.status();
    absl::StatusOr<std::string> password = Decode(userinfo.substr(colon + 1), "password");
    if (!password.ok()) return password.status();
    options.username = *std::move(user);
    options.password = *std::move(password);
    password_in_userinfo = !options.password.empty();
  }
  absl::string_view hostport = rest;
  std::optional<absl::string_view> path;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (absl::Status s = ParseHostPort(hostport, options); !s.ok()) return s;
  bool db_in_path = false;
  if (path.has_value() && !path->empty()) {
    if (absl::Status s = ParseDb(*path, options); !s.ok()) return s;
    db_in_path = true;
  }
  if (absl::Status s = ParseQuery(query, db_in_path, password_in_userinfo, options); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckCredentials(options); !s.ok()) return s;
  return options;
}

absl::StatusOr<RedisOptions> ParseUnixUrl(absl::string_view rest) {
  RedisOptions options;
  if (rest.empty() || rest.front() != '/') {
    return UrlError(
        "a unix URL takes an absolute socket path and no host: unix:///path/to/redis.sock");
  }
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  absl::StatusOr<std::string> path = Decode(rest, "socket path");
  if (!path.ok()) return path.status();
  if (*path == "/") return UrlError("the socket path is missing: unix:///path/to/redis.sock");
  options.unix_socket = *std::move(path);
  if (absl::Status s =
          ParseQuery(query, /*db_in_path=*/false, /*password_in_userinfo=*/false, options);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckCredentials(options); !s.ok()) return s;
  return options;
}

// Masks the values of `password=` parameters in a query string.
std::string RedactQuery(absl::string_view query) {
  std::vector<std::string> pieces;
  for (absl::string_view piece : absl::StrSplit(query, '&')) {
    const size_t eq = piece.find('=');
    if (eq != absl::string_view::npos && absl::AsciiStrToLower(piece.substr(0, eq)) == "password") {
      pieces.push_back(absl::StrCat(piece.substr(0, eq), "=***"));
    } else {
      pieces.emplace_back(piece);
    }
  }
  return absl::StrJoin(pieces, "&");
}

}  // namespace

absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url_in) {
  const absl::string_view url(url_in.data(), url_in.size());
  if (url.empty()) return UrlError("the URL is empty");
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) {
    return UrlError("it must start with redis:// or unix://");
  }
  const std::string scheme = absl::AsciiStrToLower(url.substr(0, scheme_end));
  const absl::string_view rest = url.substr(scheme_end + 3);
  if (rest.find('#') != absl::string_view::npos) {
    return UrlError("'#' is not allowed (percent-encode it as %23)");
  }
  if (scheme == "redis") return ParseTcpUrl(rest);
  if (scheme == "unix") return ParseUnixUrl(rest);
  if (scheme == "rediss") {
    return UrlError("rediss:// (TLS) is not supported: hiredis 0.14 has no TLS");
  }
  return UrlError("the scheme must be redis:// or unix://");
}

std::string RedactedUrl(std::string_view url_in) {
  const absl::string_view url(url_in.data(), url_in.size());
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "***";
  std::string out(url.substr(0, scheme_end + 3));
  absl::string_view rest = url.substr(scheme_end + 3);
  // Anything before the last '@' may hold credentials (even when the '@' belongs to a query
  // value, masking too much is the safe side).
  if (const size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    const absl::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    const size_t special = userinfo.find_first_of("/?");
    if (colon != absl::string_view::npos &&
        (special == absl::string_view::npos || colon < special)) {
      absl::StrAppend(&out, userinfo.substr(0, colon + 1), "***");
    } else {
      absl::StrAppend(&out, "***");
    }
    rest = rest.substr(at);  // from the '@'
  }
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    absl::StrAppend(&out, rest.substr(0, q + 1), RedactQuery(rest.substr(q + 1)));
  } else {
    absl::StrAppend(&out, rest);
  }
  return out;
}

std::string RedactedUrl(const RedisOptions& options) {
  if (!options.unix_socket.empty()) {
    std::vector<std::string> params;
    if (options.db != 0) params.push_back(absl::StrCat("db=", options.db));
    if (!options.username.empty()) params.push_back(absl::StrCat("user=", options.username));
    if (!options.password.empty()) params.push_back("password=***");
    std::string out = absl::StrCat("unix://", options.unix_socket);
    if (!params.empty()) absl::StrAppend(&out, "?", absl::StrJoin(params, "&"));
    return out;
  }
  std::string out = "redis://";
  if (!options.password.empty()) {
    absl::StrAppend(&out, options.username, ":***@");
  } else if (!options.username.empty()) {
    absl::StrAppend(&out, options.username, ":@");
  }
  if (options.host.find(':') != std::string::npos) {
    absl::StrAppend(&out, "[", options.host, "]");
  } else {
    absl::StrAppend(&out, options.host);
  }
  absl::StrAppend(&out, ":", options.port, "/", options.db);
  return out;
}

}  // namespace ndx::redis
