// File: redis_reply.h
//
// RedisReply, an owning copy of one RESP2 reply, and the one mapping from Redis failures to
// absl::Status (STYLE.md rules 4 and 5). Included by redis_client.h; code normally includes that.
//
//   absl::StatusOr<RedisReply> r = connection.Command({"GET", key});
//   if (!r.ok()) return r.status();
//   if (r->is_nil()) return absl::NotFoundError(key);
//   NDX_ASSIGN_OR_RETURN(std::string value, r->AsString());
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ndx::redis {

// RedisReply: one Redis reply (RESP2), copied out of hiredis, so it owns its data and outlives the
// connection. A value type: copyable, movable, comparable. Thread-compatible.
class RedisReply {
 public:
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };

  // A nil reply.
  RedisReply() = default;

  static RedisReply Nil() { return RedisReply(); }
  static RedisReply Integer(int64_t value);
  static RedisReply String(std::string value);   // a bulk string (binary-safe)
  static RedisReply Status(std::string value);   // a simple status such as "OK"
  static RedisReply Error(std::string message);  // an error reply such as "ERR unknown command"
  static RedisReply Array(std::vector<RedisReply> elements);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_integer() const { return type_ == Type::kInteger; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_status() const { return type_ == Type::kStatus; }
  bool is_error() const { return type_ == Type::kError; }
  bool is_array() const { return type_ == Type::kArray; }

  // The value of an integer reply; 0 for other types.
  int64_t integer() const { return integer_; }
  // The bytes of a string reply, the text of a status or error reply; "" for other types.
  const std::string& str() const { return str_; }
  // The elements of an array reply; empty for other types (a nil array is a nil reply).
  const std::vector<RedisReply>& elements() const { return elements_; }

  // The integer of an integer reply, or of a string reply that holds a decimal integer (GET of a
  // counter). INTERNAL for any other reply (the error text of an error reply is in the message).
  absl::StatusOr<int64_t> AsInt() const;
  // The bytes of a string reply or the text of a status reply. INTERNAL for any other reply,
  // nil included (check is_nil() first, or use AsOptionalString()).
  absl::StatusOr<std::string> AsString() const;
  // Like AsString(), but nil gives std::nullopt (GET of a missing key).
  absl::StatusOr<std::optional<std::string>> AsOptionalString() const;
  // OK unless this is an error reply, which is mapped by ErrorReplyToStatus() (with `where` as
  // the message prefix). Use it on the replies of a pipeline.
  absl::Status ToStatus(std::string_view where = "redis") const;

  // A short human-readable form for tests and debugging, such as `["a", 1, nil]`. It contains the
  // data: do not log replies that may hold secrets.
  std::string DebugString() const;

  friend bool operator==(const RedisReply& a, const RedisReply& b) = default;
  friend std::ostream& operator<<(std::ostream& os, const RedisReply& reply);

 private:
  Type type_ = Type::kNil;
  int64_t integer_ = 0;
  std::string str_;
  std::vector<RedisReply> elements_;
};

// ---------------------------------------------------------------------------------------------
// Error mapping: the one place where Redis failures become absl::Status (like redis-plus-plus
// throw_error). Both functions are pure and thread-safe; they are public so that the mapping is
// table-tested and so that callers can map the error replies of a pipeline.

// What kind of transport failure hiredis reported (its REDIS_ERR_* codes, without its header).
enum class IoErrorKind {
  kIo,        // REDIS_ERR_IO: a read/write/connect system call failed (see errno)
  kEof,       // REDIS_ERR_EOF: the server closed the connection
  kProtocol,  // REDIS_ERR_PROTOCOL: the bytes received are not RESP2
  kOom,       // REDIS_ERR_OOM: hiredis could not allocate memory
  kOther,     // REDIS_ERR_OTHER: anything else (e.g. the host name does not resolve)
};

// Maps a transport failure. `sys_errno` is errno right after the failing hiredis call, `errstr`
// hiredis' message, `where` the message prefix ("redis 127.0.0.1:6379: GET"). `connecting` says
// the failure happened while connecting.
//   kIo with EAGAIN/EWOULDBLOCK/ETIMEDOUT -> DEADLINE_EXCEEDED ("timed out"), except while
//     connecting: UNAVAILABLE ("connect timed out": the server is not reachable);
//   other kIo, kEof, kOther -> UNAVAILABLE; kProtocol -> INTERNAL; kOom -> RESOURCE_EXHAUSTED.
// After any of these the hiredis context is unusable and must be dropped.
absl::Status IoErrorToStatus(IoErrorKind kind, int sys_errno, std::string_view errstr,
                             std::string_view where, bool connecting = false);

// Maps an error reply (its text, e.g. "BUSY Redis is busy running a script") by its first word:
//   LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY -> UNAVAILABLE;
//   OOM -> RESOURCE_EXHAUSTED; NOAUTH, WRONGPASS -> UNAUTHENTICATED; NOPERM -> PERMISSION_DENIED;
//   NOSCRIPT -> NOT_FOUND;
//   NDX_<CODE> (raised by ndx's Lua scripts, CODE an absl code name such as ABORTED, NOT_FOUND,
//     FAILED_PRECONDITION, INVALID_ARGUMENT, RESOURCE_EXHAUSTED) -> that code, and the message is
//     the text after the first word alone ("NDX_ABORTED stale epoch" -> ABORTED "stale epoch",
//     without the " script: <sha>, on @user_script:N." that Redis 7 appends to Lua error());
//   anything else (ERR, WRONGTYPE, EXECABORT, NDX_OK, an unknown NDX_ code...) -> INTERNAL.
// Except for NDX_ errors, the message is "<where>: <error text>".
absl::Status ErrorReplyToStatus(std::string_view error, std::string_view where);

}  // namespace ndx::redis
