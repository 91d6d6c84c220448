// File: redis_url.h
//
// RedisOptions: where and how ndx::redis connects (endpoint, credentials, database, timeouts,
// reconnect backoff), and ParseRedisUrl(), which builds them from the REDIS_URL forms the services
// accept:
//
//   redis://[[user]:password@]host[:port][/db][?param=value&...]
//   unix:///path/to/redis.sock[?db=N&password=...&user=...]
//
//   absl::StatusOr<ndx::redis::RedisOptions> options = ndx::redis::ParseRedisUrl(env_value);
//   if (!options.ok()) return options.status();   // INVALID_ARGUMENT, says what is wrong
//   std::cerr << "redis: " << ndx::redis::RedactedUrl(*options) << "\n";   // password is "***"
//
// Passwords are secrets: no function here puts a password into an error message, and RedactedUrl()
// is the way to log a URL or RedisOptions. Everything here is thread-compatible (pure functions and
// a plain struct).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndx::redis {

// RedisOptions: the settings of one connection (and of every connection of a RedisPool).
struct RedisOptions {
  // TCP endpoint, used when `unix_socket` is empty. `host` is a name or an IP address (IPv6
  // without brackets here, "::1").
  std::string host = "127.0.0.1";
  int port = 6379;
  // When not empty, connect to this Unix domain socket path instead of host:port.
  std::string unix_socket;

  // Credentials. With a password, every new connection sends AUTH: `AUTH username password` when
  // `username` is set (Redis 6+ ACL), else `AUTH password`.
  std::string username;
  std::string password;
  // Database selected with SELECT on every new connection (when not 0).
  int db = 0;
  // When not empty, sent with CLIENT SETNAME on every new connection (shows in CLIENT LIST).
  std::string client_name;

  // Time allowed for the TCP / Unix connect.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Socket send/receive timeout of a command (per read or write system call, so a large pipeline
  // can take longer in total). absl::InfiniteDuration() disables it. RedisConnection::Command()
  // can override it per call for blocking commands.
  absl::Duration command_timeout = absl::Seconds(2);
  // Reconnect backoff: after a failure, the next connect attempt waits `reconnect_backoff_min`,
  // doubling on each further failure up to `reconnect_backoff_max`; a successful connect resets it.
  absl::Duration reconnect_backoff_min = absl::Milliseconds(20);
  absl::Duration reconnect_backoff_max = absl::Seconds(1);
};

// Parses a Redis URL into RedisOptions (fields the URL does not mention keep their defaults).
//
//   redis://host                     -> host:6379, db 0
//   redis://:secret@host:6380/2      -> password "secret", db 2
//   redis://alice:secret@[::1]:6380  -> ACL user "alice", IPv6 host
//   unix:///run/redis.sock?db=3&password=secret
//
// The scheme is `redis` or `unix` (case-insensitive). User, password, socket path and parameter
// values are percent-decoded: percent-encode '%', '?' and '#' in a password (an unencoded '@' or
// '/' in it is tolerated, since the user info ends at the last '@'). Query parameters, for both
// schemes: `db`, `password`, `user` (or `username`), `client_name`, `connect_timeout` and
// `command_timeout` (absl durations such as "500ms" or "2s"). `rediss://` (TLS) is rejected:
// hiredis 0.14 has no TLS.
//
// Returns the options, or INVALID_ARGUMENT with a message that names the part that is wrong
// (scheme, host, port, database, credentials, a parameter). The message never contains the
// password, nor any other part of the URL that could be one.
absl::StatusOr<RedisOptions> ParseRedisUrl(std::string_view url);

// `url` with its password replaced by "***" (in the user-info part and in a `password=` query
// parameter), for logs. Works on URLs that ParseRedisUrl() rejects too (best effort: anything that
// might be a credential is masked); returns "***" for text that is not URL-shaped at all.
std::string RedactedUrl(std::string_view url);

// A URL that describes `options`, with the password (if any) shown as "***", for logs:
// "redis://alice:***@127.0.0.1:6379/2" or "unix:///run/redis.sock?db=2&password=***".
std::string RedactedUrl(const RedisOptions& options);

}  // namespace ndx::redis
