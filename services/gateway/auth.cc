#include "services/gateway/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "nlohmann/json.hpp"

namespace ndx::gateway {
namespace {

using nlohmann::json;

constexpr absl::Duration kLeeway = absl::Seconds(30);
constexpr size_t kMaxTokenBytes = 1024;

bool PrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
}

absl::Status Unauthenticated(std::string_view message) {
  return absl::UnauthenticatedError(absl::string_view(message.data(), message.size()));
}

std::string HmacSha256(std::string_view data, std::string_view key) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::optional<std::string> Base64UrlDecode(std::string_view in) {
  std::string out;
  if (!absl::WebSafeBase64Unescape(absl::string_view(in.data(), in.size()), &out)) {
    return std::nullopt;
  }
  return out;
}

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  absl::WebSafeBase64Escape(absl::string_view(in.data(), in.size()), &out);
  return out;
}

std::string StringClaim(const json& claims, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    auto it = claims.find(name);
    if (it != claims.end() && it->is_string()) return it->get<std::string>();
  }
  return "";
}

}  // namespace

absl::StatusOr<JwtClaims> VerifyJwtHs256(std::string_view token, std::string_view secret,
                                         absl::Time now) {
  const std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(token.data(), token.size()), '.');
  if (parts.size() != 3) return Unauthenticated("Invalid authentication token: not a JWT");
  const std::optional<std::string> header = Base64UrlDecode(parts[0]);
  const std::optional<std::string> payload = Base64UrlDecode(parts[1]);
  const std::optional<std::string> signature = Base64UrlDecode(parts[2]);
  if (!header || !payload || !signature) {
    return Unauthenticated("Invalid authentication token: bad base64url in the JWT");
  }
  const json h = json::parse(*header, nullptr, /*allow_exceptions=*/false);
  if (!h.is_object()) return Unauthenticated("Invalid authentication token: bad JWT header");
  if (!h.contains("alg") || h["alg"] != "HS256") {
    return Unauthenticated("Invalid authentication token: JWT alg must be HS256");
  }
  if (secret.empty()) return Unauthenticated("Invalid authentication token: JWTs are not enabled");
  const std::string signing_input = absl::StrCat(parts[0], ".", parts[1]);
  const std::string expected = HmacSha256(signing_input, secret);
  if (expected.size() != signature->size() ||
      CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) != 0) {
    return Unauthenticated("Invalid authentication token: bad JWT signature");
  }
  const json claims = json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return Unauthenticated("Invalid authentication token: bad JWT claims");
  if (auto exp = claims.find("exp"); exp != claims.end()) {
    if (!exp->is_number()) return Unauthenticated("Invalid authentication token: exp not a number");
    // As a double: a NumericDate may be fractional, and converting a huge one (1e300) to an
    // integer is undefined behaviour. absl::Seconds saturates instead.
    if (absl::UnixEpoch() + absl::Seconds(exp->get<double>()) + kLeeway <= now) {
      return Unauthenticated("Session expired");
    }
  }
  if (auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!nbf->is_number()) return Unauthenticated("Invalid authentication token: nbf not a number");
    if (absl::UnixEpoch() + absl::Seconds(nbf->get<double>()) - kLeeway > now) {
      return Unauthenticated("Invalid authentication token: not valid yet (nbf)");
    }
  }
  JwtClaims out;
  out.subject = StringClaim(claims, {"sub"});
  out.workspace_id = StringClaim(claims, {"workspaceId", "workspace_id"});
  if (out.subject.empty()) return Unauthenticated("Invalid authentication token: no sub claim");
  if (out.workspace_id.empty()) {
    return Unauthenticated("Invalid authentication token: no workspaceId claim");
  }
  return out;
}

std::string SignJwtHs256(std::string_view claims_json, std::string_view secret) {
  const std::string input = absl::StrCat(Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})"), ".",
                                         Base64UrlEncode(claims_json));
  return absl::StrCat(input, ".", Base64UrlEncode(HmacSha256(input, secret)));
}

Authenticator::Authenticator(Options options, std::unique_ptr<pg::PgPool> sessions)
    : options_(std::move(options)), sessions_(std::move(sessions)) {}

absl::StatusOr<Principal> Authenticator::Authenticate(std::string_view token,
                                                      std::string_view workspace_header) const {
  if (options_.disabled) return Principal{"dev", "", "none"};
  if (token.empty()) return Unauthenticated("Authentication token required");
  // A JWT has three base64url parts; better-auth session tokens have no dots.
  if (std::count(token.begin(), token.end(), '.') == 2) {
    absl::StatusOr<JwtClaims> claims = VerifyJwtHs256(token, options_.jwt_secret, absl::Now());
    if (!claims.ok()) return claims.status();
    return Principal{claims->subject, claims->workspace_id, "jwt"};
  }
  return LookupSession(token, workspace_header);
}

absl::StatusOr<Principal> Authenticator::LookupSession(std::string_view token,
                                                       std::string_view workspace_header) const {
  if (sessions_ == nullptr) return Unauthenticated("Invalid authentication token");
  // Session tokens are printable ASCII; anything else (invalid UTF-8 above all, which PostgreSQL
  // refuses as a query parameter) is not one, and must not read as "the database is down".
  if (token.size() > kMaxTokenBytes || !PrintableAscii(token)) {
    return Unauthenticated("Invalid authentication token");
  }
  if (workspace_header.size() > kMaxTokenBytes || !PrintableAscii(workspace_header)) {
    return absl::InvalidArgumentError("x-workspace-id: must be printable ASCII");
  }
  struct Row {
    bool found = false;
    bool expired = false;
    std::string user_id;
    bool member = false;
  };
  const std::string t(token);
  const std::string ws(workspace_header);
  absl::StatusOr<Row> row = sessions_->Transact([&](pqxx::work& tx) -> absl::StatusOr<Row> {
    Row r;
    // The table is NodeDrop's; it may not exist in an ndx-only database.
    if (tx.exec1("SELECT to_regclass('public.sessions') IS NOT NULL")[0].as<bool>() == false) {
      return r;
    }
    pqxx::result res = tx.exec_params(
        "SELECT user_id, expires_at < now() FROM sessions WHERE token = $1 LIMIT 1", t);
    if (res.empty()) return r;
    r.found = true;
    r.user_id = res[0][0].as<std::string>();
    r.expired = !res[0][1].is_null() && res[0][1].as<bool>();
    if (!ws.empty() &&
        tx.exec1("SELECT to_regclass('public.workspace_members') IS NOT NULL")[0].as<bool>()) {
      r.member = !tx.exec_params(
                        "SELECT 1 FROM workspace_members WHERE workspace_id = $1 AND "
                        "user_id = $2 LIMIT 1",
                        ws, r.user_id)
                      .empty();
    }
    return r;
  });
  if (!row.ok()) {
    log::Warn("session lookup failed", {{"error", row.status()}});
    return absl::UnavailableError("cannot check the session token now; retry later");
  }
  if (!row->found) return Unauthenticated("Invalid authentication token");
  if (row->expired) return Unauthenticated("Session expired");
  return Principal{row->user_id, row->member ? ws : absl::StrCat("user:", row->user_id), "session"};
}

absl::Duration RateLimiter::Acquire(const std::string& key, absl::Time now) {
  if (per_minute_ <= 0) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  const double rate = per_minute_ / 60.0;  // tokens per second
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{static_cast<double>(burst_), now});
  Bucket& b = it->second;
  b.tokens = std::min<double>(burst_, b.tokens + absl::ToDoubleSeconds(now - b.updated) * rate);
  b.updated = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return absl::ZeroDuration();
  }
  if (buckets_.size() > 100000) buckets_.clear();  // bound memory under many distinct users
  return absl::Seconds((1.0 - b.tokens) / rate);
}

std::string QueryParam(std::string_view query, std::string_view name) {
  for (absl::string_view pair_str :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&')) {
    std::string_view pair(pair_str.data(), pair_str.size());
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return "";
    std::string_view v = pair.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '+') {
        out.push_back(' ');
      } else if (v[i] == '%' && i + 2 < v.size() && absl::ascii_isxdigit(v[i + 1]) &&
                 absl::ascii_isxdigit(v[i + 2])) {
        out.push_back(static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(v[i]);
      }
    }
    return out;
  }
  return "";
}

std::string BearerToken(const std::map<std::string, std::string>& headers, std::string_view query) {
  if (auto it = headers.find("authorization"); it != headers.end()) {
    std::string_view v = it->second;
    if (absl::StartsWithIgnoreCase(absl::string_view(v.data(), v.size()), "bearer ")) {
      v.remove_prefix(7);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
  }
  return QueryParam(query, "token");
}

}  // namespace ndx::gateway
