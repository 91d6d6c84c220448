#include "libs/common/redis/redis_reply.h"

#include <cerrno>
#include <optional>
#include <ostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ndx::redis {
namespace {

// Debian's abseil is built with its own absl::string_view (not an alias of std::string_view).
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::string_view TypeName(RedisReply::Type type) {
  switch (type) {
    case RedisReply::Type::kNil:
      return "nil";
    case RedisReply::Type::kInteger:
      return "integer";
    case RedisReply::Type::kString:
      return "string";
    case RedisReply::Type::kStatus:
      return "status";
    case RedisReply::Type::kError:
      return "error";
    case RedisReply::Type::kArray:
      return "array";
  }
  return "unknown";
}

absl::Status UnexpectedType(const RedisReply& reply, absl::string_view expected) {
  if (reply.is_error()) {
    return absl::InternalError(
        absl::StrCat("expected ", expected, " reply, got error: ", reply.str()));
  }
  return absl::InternalError(
      absl::StrCat("expected ", expected, " reply, got ", TypeName(reply.type())));
}

// strerror() texts start with a capital ("Connection refused"); our messages are lower case.
std::string LowerFirst(std::string_view text) {
  std::string out(text.data(), text.size());
  if (!out.empty()) out[0] = absl::ascii_tolower(static_cast<unsigned char>(out[0]));
  return out;
}

// The absl code named `name` ("ABORTED", "NOT_FOUND", ...), or nullopt. OK is not an error.
std::optional<absl::StatusCode> CodeFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, absl::StatusCode> kCodes[] = {
      {"CANCELLED", absl::StatusCode::kCancelled},
      {"UNKNOWN", absl::StatusCode::kUnknown},
      {"INVALID_ARGUMENT", absl::StatusCode::kInvalidArgument},
      {"DEADLINE_EXCEEDED", absl::StatusCode::kDeadlineExceeded},
      {"NOT_FOUND", absl::StatusCode::kNotFound},
      {"ALREADY_EXISTS", absl::StatusCode::kAlreadyExists},
      {"PERMISSION_DENIED", absl::StatusCode::kPermissionDenied},
      {"RESOURCE_EXHAUSTED", absl::StatusCode::kResourceExhausted},
      {"FAILED_PRECONDITION", absl::StatusCode::kFailedPrecondition},
      {"ABORTED", absl::StatusCode::kAborted},
      {"OUT_OF_RANGE", absl::StatusCode::kOutOfRange},
      {"UNIMPLEMENTED", absl::StatusCode::kUnimplemented},
      {"INTERNAL", absl::StatusCode::kInternal},
      {"UNAVAILABLE", absl::StatusCode::kUnavailable},
      {"DATA_LOSS", absl::StatusCode::kDataLoss},
      {"UNAUTHENTICATED", absl::StatusCode::kUnauthenticated},
  };
  for (const auto& [code_name, code] : kCodes) {
    if (code_name == name) return code;
  }
  return std::nullopt;
}

// Redis 7 appends " script: <sha1>, on @user_script:<line>." to errors raised with Lua's
// error({err = ...}) (not to redis.error_reply() results); NDX_ messages are shown without it.
absl::string_view StripScriptLocation(absl::string_view message) {
  const size_t pos = message.rfind(" script: ");
  if (pos == absl::string_view::npos) return message;
  const absl::string_view tail = message.substr(pos + 9);
  if (tail.size() < 40 || !absl::StartsWith(tail.substr(40), ", on @user_script:")) return message;
  for (char c : tail.substr(0, 40)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return message;
  }
  return message.substr(0, pos);
}

}  // namespace

RedisReply RedisReply::Integer(int64_t value) {
  RedisReply r;
  r.type_ = Type::kInteger;
  r.integer_ = value;
  return r;
}

RedisReply RedisReply::String(std::string value) {
  RedisReply r;
  r.type_ = Type::kString;
  r.str_ = std::move(value);
  return r;
}

RedisReply RedisReply::Status(std::string value) {
  RedisReply r;
  r.type_ = Type::kStatus;
  r.str_ = std::move(value);
  return r;
}

RedisReply RedisReply::Error(std::string message) {
  RedisReply r;
  r.type_ = Type::kError;
  r.str_ = std::move(message);
  return r;
}

RedisReply RedisReply::Array(std::vector<RedisReply> elements) {
  RedisReply r;
  r.type_ = Type::kArray;
  r.elements_ = std::move(elements);
  return r;
}

absl::StatusOr<int64_t> RedisReply::AsInt() const {
  if (is_integer()) return integer_;
  int64_t value = 0;
  if (is_string() && absl::SimpleAtoi(str_, &value)) return value;
  return UnexpectedType(*this, "an integer");
}

absl::StatusOr<std::string> RedisReply::AsString() const {
  if (is_string() || is_status()) return str_;
  return UnexpectedType(*this, "a string");
}

absl::StatusOr<std::optional<std::string>> RedisReply::AsOptionalString() const {
  if (is_nil()) return std::optional<std::string>();
  if (is_string() || is_status()) return std::optional<std::string>(str_);
  return UnexpectedType(*this, "a string or nil");
}

absl::Status RedisReply::ToStatus(std::string_view where) const {
  if (!is_error()) return absl::OkStatus();
  return ErrorReplyToStatus(str_, where);
}

std::string RedisReply::DebugString() const {
  switch (type_) {
    case Type::kNil:
      return "nil";
    case Type::kInteger:
      return absl::StrCat(integer_);
    case Type::kString:
      return absl::StrCat("\"", absl::CHexEscape(str_), "\"");
    case Type::kStatus:
      return absl::StrCat("+", str_);
    case Type::kError:
      return absl::StrCat("-", str_);
    case Type::kArray:
      return absl::StrCat("[",
                          absl::StrJoin(elements_, ", ",
                                        [](std::string* out, const RedisReply& e) {
                                          out->append(e.DebugString());
                                        }),
                          "]");
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const RedisReply& reply) {
  return os << reply.DebugString();
}

absl::Status IoErrorToStatus(IoErrorKind kind, int sys_errno, std::string_view errstr,
                             std::string_view where, bool connecting) {
  switch (kind) {
    case IoErrorKind::kIo:
      if (sys_errno == EAGAIN || sys_errno == EWOULDBLOCK || sys_errno == ETIMEDOUT) {
        // A connect that times out means "Redis is not reachable"; a command that times out
        // means "this call took too long" (the server may still be fine).
        if (connecting)
          return absl::UnavailableError(absl::StrCat(Sv(where), ": connect timed out"));
        return absl::DeadlineExceededError(absl::StrCat(Sv(where), ": timed out"));
      }
      return absl::UnavailableError(absl::StrCat(Sv(where), ": ", LowerFirst(errstr)));
    case IoErrorKind::kEof:
      return absl::UnavailableError(absl::StrCat(Sv(where), ": server closed the connection"));
    case IoErrorKind::kProtocol:
      return absl::InternalError(absl::StrCat(Sv(where), ": protocol error: ", Sv(errstr)));
    case IoErrorKind::kOom:
      return absl::ResourceExhaustedError(absl::StrCat(Sv(where), ": out of memory"));
    case IoErrorKind::kOther:
      return absl::UnavailableError(absl::StrCat(Sv(where), ": ", LowerFirst(errstr)));
  }
  return absl::InternalError(absl::StrCat(Sv(where), ": unknown I/O error: ", Sv(errstr)));
}

absl::Status ErrorReplyToStatus(std::string_view error, std::string_view where) {
  const size_t space = error.find(' ');
  const std::string_view word = error.substr(0, space);
  if (word.size() > 4 && word.substr(0, 4) == "NDX_") {
    if (std::optional<absl::StatusCode> code = CodeFromName(word.substr(4)); code.has_value()) {
      const absl::string_view message =
          space == std::string_view::npos
              ? Sv(word)
              : absl::StripLeadingAsciiWhitespace(Sv(error.substr(space + 1)));
      return absl::Status(*code, StripScriptLocation(message));
    }
  }
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (word == "LOADING" || word == "BUSY" || word == "MASTERDOWN" || word == "TRYAGAIN" ||
      word == "CLUSTERDOWN" || word == "READONLY") {
    code = absl::StatusCode::kUnavailable;
  } else if (word == "OOM") {
    code = absl::StatusCode::kResourceExhausted;
  } else if (word == "NOAUTH" || word == "WRONGPASS") {
    code = absl::StatusCode::kUnauthenticated;
  } else if (word == "NOPERM") {
    code = absl::StatusCode::kPermissionDenied;
  } else if (word == "NOSCRIPT") {
    code = absl::StatusCode::kNotFound;
  }
  return absl::Status(code, absl::StrCat(Sv(where), ": ", Sv(error)));
}

}  // namespace ndx::redis
