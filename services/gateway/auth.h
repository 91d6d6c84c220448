// File: auth.h
//
// Who is calling the gateway. Every route except /health, /api/health, /metrics and the dashboard's
// static page needs a token, as `Authorization: Bearer <token>` (REST, WebSocket upgrades), the
// Socket.IO handshake's `auth.token`, or `?token=` on WebSocket URLs (browsers cannot set headers
// on WebSocket requests). Two kinds of tokens are accepted:
//
//  - HS256 JWTs signed with NDX_JWT_SECRET. The header must say {"alg":"HS256"} (any other alg,
//    "none" included, is refused); the signature is compared in constant time; `exp` and `nbf`
//    (seconds since the epoch, optional) are checked with 30 s of leeway. Claims: `sub` = the user
//    id (required), `workspaceId` (or `workspace_id`) = the workspace (required).
//  - NodeDrop (better-auth) session tokens, looked up in its `sessions` table (columns `token`,
//    `user_id`, `expires_at`) when DATABASE_URL is set. The workspace is the `x-workspace-id`
//    header when `workspace_members` (workspace_id, user_id) has that pair; otherwise the user's
//    personal scope "user:<user id>". A missing table means only JWTs work.
//
// NDX_AUTH=none (development only, never the default) accepts every request as the user "dev"
// with no workspace restriction.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/pg/pg_pool.h"

namespace ndx::gateway {

struct Principal {
  std::string user_id;
  std::string workspace_id;  // "" only with NDX_AUTH=none (no restriction)
  std::string method;        // "jwt", "session" or "none"
};

struct JwtClaims {
  std::string subject;
  std::string workspace_id;
};

// Verifies an HS256 JWT. UNAUTHENTICATED with a message saying what is wrong (malformed,
// unsupported alg, bad signature, expired, not yet valid, missing sub or workspaceId).
absl::StatusOr<JwtClaims> VerifyJwtHs256(std::string_view token, std::string_view secret,
                                         absl::Time now);

// Signs claims (a JSON object text) as an HS256 JWT. For tests and tools.
std::string SignJwtHs256(std::string_view claims_json, std::string_view secret);

class Authenticator {
 public:
  struct Options {
    bool disabled = false;   // NDX_AUTH=none
    std::string jwt_secret;  // empty: JWTs are refused
  };
  // `sessions` may be null (no DATABASE_URL): session tokens are then refused.
  Authenticator(Options options, std::unique_ptr<pg::PgPool> sessions);

  bool disabled() const { return options_.disabled; }

  // `token` may be empty. UNAUTHENTICATED (NodeDrop's messages: "Authentication token required",
  // "Invalid authentication token", "Session expired", or what is wrong with a JWT);
  // UNAVAILABLE when the sessions table cannot be read.
  absl::StatusOr<Principal> Authenticate(std::string_view token,
                                         std::string_view workspace_header) const;

 private:
  absl::StatusOr<Principal> LookupSession(std::string_view token,
                                          std::string_view workspace_header) const;

  Options options_;
  std::unique_ptr<pg::PgPool> sessions_;
};

// Token bucket per key (user): `per_minute` tokens a minute, at most `burst` at once.
class RateLimiter {
 public:
  RateLimiter(int per_minute, int burst) : per_minute_(per_minute), burst_(burst) {}
  // Zero when allowed (a token is taken); otherwise how long until one is available.
  absl::Duration Acquire(const std::string& key, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const int per_minute_;  // 0 = unlimited
  const int burst_;
  absl::Mutex mu_;
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// The bearer token of a request: `Authorization: Bearer x`, else `token` in the query string.
std::string BearerToken(const std::map<std::string, std::string>& headers, std::string_view query);

// The value of `name` in a query string ("a=1&b=2"), percent-decoded; "" when absent.
std::string QueryParam(std::string_view query, std::string_view name);

}  // namespace ndx::gateway
