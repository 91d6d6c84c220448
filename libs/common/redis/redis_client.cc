#include "libs/common/redis/redis_client.h"

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/check.h"
#include "libs/common/status_macros.h"

namespace ndx::redis {
namespace {

// Debian's abseil is built with its own absl::string_view (not an alias of std::string_view).
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// Sends what hiredis has buffered on `context` (redisAppendCommandArgv) with send(MSG_NOSIGNAL).
// hiredis 0.14 writes with write(2), so writing to a connection the server has reset raises
// SIGPIPE, whose default action kills the process; a library must not change the process-wide
// disposition, and masking the signal around every command costs three or four syscalls per
// round trip. MSG_NOSIGNAL turns it into EPIPE at no cost. redisGetReply() then finds the buffer
// empty and only reads (reads never raise SIGPIPE). On failure, sets the context's error as
// hiredis would (REDIS_ERR_IO, errno kept) and returns false.
bool Flush(redisContext* context) {
  const size_t size = sdslen(context->obuf);
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = send(context->fd, context->obuf + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved_errno = errno;
      context->err = REDIS_ERR_IO;
      char buffer[sizeof(context->errstr)];
      const char* text = strerror_r(saved_errno, buffer, sizeof(buffer));
      std::snprintf(context->errstr, sizeof(context->errstr), "%s", text);
      errno = saved_errno;
      return false;  // the connection is dropped: what stays in the buffer does not matter
    }
    sent += static_cast<size_t>(n);
  }
  // Empty the buffer in place (sdsrange() and sdsclear() are not exported with C linkage to C++;
  // sdssetlen() is an inline of sds.h).
  sdssetlen(context->obuf, 0);
  context->obuf[0] = '\0';
  return true;
}

IoErrorKind KindOf(int hiredis_err) {
  switch (hiredis_err) {
    case REDIS_ERR_IO:
      return IoErrorKind::kIo;
    case REDIS_ERR_EOF:
      return IoErrorKind::kEof;
    case REDIS_ERR_PROTOCOL:
      return IoErrorKind::kProtocol;
    case REDIS_ERR_OOM:
      return IoErrorKind::kOom;
    default:
      return IoErrorKind::kOther;
  }
}

// The status of a failed hiredis call on `context`; `sys_errno` is errno right after the call.
absl::Status ContextError(const redisContext& context, int sys_errno, std::string_view where,
                          bool connecting) {
  return IoErrorToStatus(KindOf(context.err), sys_errno, context.errstr, where, connecting);
}

RedisReply CopyReply(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_NIL:
      return RedisReply::Nil();
    case REDIS_REPLY_INTEGER:
      return RedisReply::Integer(reply.integer);
    case REDIS_REPLY_STRING:
      return RedisReply::String(std::string(reply.str, reply.len));
    case REDIS_REPLY_STATUS:
      return RedisReply::Status(std::string(reply.str, reply.len));
    case REDIS_REPLY_ERROR:
      return RedisReply::Error(std::string(reply.str, reply.len));
    case REDIS_REPLY_ARRAY: {
      std::vector<RedisReply> elements;
      elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) {
        elements.push_back(reply.element[i] == nullptr ? RedisReply::Nil()
                                                       : CopyReply(*reply.element[i]));
      }
      return RedisReply::Array(std::move(elements));
    }
  }
  return RedisReply::Error(absl::StrCat("ERR unknown reply type ", reply.type));
}

// hiredis takes the timeout as a timeval, where {0, 0} means "no timeout".
timeval TimevalFor(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return timeval{0, 0};
  timeval tv = absl::ToTimeval(d);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;  // below 1 us: not "forever"
  return tv;
}

absl::Status ValidateOptions(const RedisOptions& o) {
  auto invalid = [](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("redis options: ", Sv(what)));
  };
  if (o.unix_socket.empty()) {
    if (o.host.empty()) return invalid("the host is empty (and no unix_socket is set)");
    if (o.port < 1 || o.port > 65535) return invalid("the port must be in 1..65535");
  }
  if (o.db < 0) return invalid("db must not be negative");
  if (o.connect_timeout <= absl::ZeroDuration() || o.connect_timeout == absl::InfiniteDuration()) {
    return invalid("connect_timeout must be positive and finite");
  }
  if (o.command_timeout <= absl::ZeroDuration()) {
    return invalid("command_timeout must be positive (or absl::InfiniteDuration())");
  }
  if (o.reconnect_backoff_min <= absl::ZeroDuration() ||
      o.reconnect_backoff_max < o.reconnect_backoff_min) {
    return invalid("the reconnect backoff needs 0 < min <= max");
  }
  return absl::OkStatus();
}

std::string EndpointOf(const RedisOptions& o) {
  if (!o.unix_socket.empty()) return absl::StrCat("unix:", o.unix_socket);
  if (o.host.find(':') != std::string::npos) return absl::StrCat("[", o.host, "]:", o.port);
  return absl::StrCat(o.host, ":", o.port);
}

// One command on `context`, binary-safe. Error replies are returned as replies; a non-OK status
// means the transport failed and the context is unusable.
absl::StatusOr<RedisReply> RoundTrip(redisContext* context,
                                     const std::vector<std::string_view>& args,
                                     std::string_view where, bool connecting) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  // Only buffers the command (fails only when out of memory).
  if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data()) !=
      REDIS_OK) {
    return ContextError(*context, errno, where, connecting);
  }
  errno = 0;
  void* raw = nullptr;
  if (!Flush(context) || redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) {
    return ContextError(*context, errno, where, connecting);
  }
  ReplyPtr reply(static_cast<redisReply*>(raw));
  return CopyReply(*reply);
}

bool IsNoScript(const RedisReply& reply) {
  return reply.is_error() && absl::StartsWith(reply.str(), "NOSCRIPT");
}

// Ceiling in whole milliseconds, for messages.
int64_t CeilMillis(absl::Duration d) {
  return absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ReconnectBackoff

ReconnectBackoff::ReconnectBackoff(absl::Duration min, absl::Duration max)
    : min_(min), max_(max), next_delay_(min) {}

void ReconnectBackoff::RecordFailure(absl::Time now) {
  last_delay_ = next_delay_;
  not_before_ = now + next_delay_;
  next_delay_ = std::min(next_delay_ * 2, max_);
}

void ReconnectBackoff::Reset() {
  next_delay_ = min_;
  last_delay_ = absl::ZeroDuration();
  not_before_ = absl::InfinitePast();
}

absl::Duration ReconnectBackoff::Remaining(absl::Time now) const {
  if (now >= not_before_) return absl::ZeroDuration();
  return std::min(not_before_ - now, last_delay_);
}

// ---------------------------------------------------------------------------------------------
// RedisScript

std::string RedisScript::sha() const {
  absl::MutexLock lock(&mu_);
  return sha_;
}

void RedisScript::set_sha(std::string sha) const {
  absl::MutexLock lock(&mu_);
  sha_ = std::move(sha);
}

// ---------------------------------------------------------------------------------------------
// RedisPipeline

RedisPipeline& RedisPipeline::Add(const std::vector<std::string_view>& args) {
  Entry entry;
  entry.args.assign(args.begin(), args.end());
  entries_.push_back(std::move(entry));
  return *this;
}

RedisPipeline& RedisPipeline::Eval(const RedisScript& script,
                                   const std::vector<std::string_view>& keys,
                                   const std::vector<std::string_view>& args) {
  Entry entry;
  entry.script = &script;
  entry.num_keys = keys.size();
  entry.args.reserve(keys.size() + args.size());
  entry.args.assign(keys.begin(), keys.end());
  entry.args.insert(entry.args.end(), args.begin(), args.end());
  entries_.push_back(std::move(entry));
  return *this;
}

// ---------------------------------------------------------------------------------------------
// RedisConnection

void RedisConnection::ContextDeleter::operator()(redisContext* context) const {
  redisFree(context);
}

RedisConnection::RedisConnection(RedisOptions options, common::Clock& clock)
    : options_(std::move(options)),
      clock_(&clock),
      endpoint_(EndpointOf(options_)),
      backoff_(options_.reconnect_backoff_min, options_.reconnect_backoff_max) {}

RedisConnection::~RedisConnection() = default;
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;

std::string RedisConnection::Where(std::string_view what) const {
  return absl::StrCat("redis ", endpoint_, ": ", Sv(what));
}

absl::Status RedisConnection::Connect() { return EnsureConnected().status(); }

void RedisConnection::Reset() { context_.reset(); }

absl::StatusOr<RedisConnection::ContextPtr> RedisConnection::Open() {
  const timeval connect_timeout = TimevalFor(options_.connect_timeout);
  errno = 0;
  redisContext* raw =
      options_.unix_socket.empty()
          ? redisConnectWithTimeout(options_.host.c_str(), options_.port, connect_timeout)
          : redisConnectUnixWithTimeout(options_.unix_socket.c_str(), connect_timeout);
  const int saved_errno = errno;
  if (raw == nullptr) return absl::ResourceExhaustedError(Where("connect: out of memory"));
  ContextPtr context(raw);
  if (context->err != 0) return ContextError(*context, saved_errno, Where("connect"), true);
  if (options_.unix_socket.empty() && redisEnableKeepAlive(context.get()) != REDIS_OK) {
    return ContextError(*context, errno, Where("connect"), true);
  }
  if (redisSetTimeout(context.get(), TimevalFor(options_.command_timeout)) != REDIS_OK) {
    return ContextError(*context, errno, Where("connect"), true);
  }

  // The handshake. Its messages never contain the arguments (the password).
  auto handshake = [&](const std::vector<std::string_view>& args,
                       std::string_view name) -> absl::Status {
    NDX_ASSIGN_OR_RETURN(RedisReply reply, RoundTrip(context.get(), args, Where(name), true));
    return reply.ToStatus(Where(name));
  };
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      NDX_RETURN_IF_ERROR(handshake({"AUTH", options_.password}, "AUTH"));
    } else {
      NDX_RETURN_IF_ERROR(handshake({"AUTH", options_.username, options_.password}, "AUTH"));
    }
  }
  if (options_.db != 0) {
    const std::string db = absl::StrCat(options_.db);
    NDX_RETURN_IF_ERROR(handshake({"SELECT", db}, absl::StrCat("SELECT ", db)));
  }
  if (!options_.client_name.empty()) {
    NDX_RETURN_IF_ERROR(handshake({"CLIENT", "SETNAME", options_.client_name}, "CLIENT SETNAME"));
  }
  return context;
}

absl::StatusOr<redisContext*> RedisConnection::EnsureConnected() {
  if (context_ != nullptr) return context_.get();
  NDX_RETURN_IF_ERROR(ValidateOptions(options_));
  const absl::Duration wait = backoff_.Remaining(clock_->Now());
  if (wait > absl::ZeroDuration()) {
    return absl::UnavailableError(absl::StrCat(
        Where("reconnecting in "), CeilMillis(wait), " ms; last error: ",
        absl::StripPrefix(last_error_.message(), absl::StrCat("redis ", endpoint_, ": "))));
  }
  absl::StatusOr<ContextPtr> context = Open();
  if (!context.ok()) {
    backoff_.RecordFailure(clock_->Now());
    last_error_ = context.status();
    return context.status();
  }
  backoff_.Reset();
  last_error_ = absl::OkStatus();
  context_ = *std::move(context);
  return context_.get();
}

absl::Status RedisConnection::Fail(absl::Status status) {
  context_.reset();
  backoff_.RecordFailure(clock_->Now());
  last_error_ = status;
  return status;
}

absl::StatusOr<RedisReply> RedisConnection::Execute(const std::vector<std::string_view>& args,
                                                    const absl::Duration* timeout) {
  if (args.empty()) return absl::InvalidArgumentError(Where("empty command"));
  if (timeout != nullptr && *timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(Where("the per-call timeout must be positive"));
  }
  NDX_ASSIGN_OR_RETURN(redisContext * context, EnsureConnected());
  const std::string where = Where(args[0]);
  if (timeout != nullptr && redisSetTimeout(context, TimevalFor(*timeout)) != REDIS_OK) {
    return Fail(ContextError(*context, errno, where, false));
  }
  absl::StatusOr<RedisReply> reply = RoundTrip(context, args, where, false);
  if (!reply.ok()) return Fail(reply.status());
  if (timeout != nullptr &&
      redisSetTimeout(context, TimevalFor(options_.command_timeout)) != REDIS_OK) {
    // The reply is good, but the connection cannot be trusted with the default timeout.
    Fail(ContextError(*context, errno, where, false)).IgnoreError();
  }
  return reply;
}

absl::StatusOr<RedisReply> RedisConnection::Command(const std::vector<std::string_view>& args) {
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Execute(args, nullptr));
  if (reply.is_error()) return ErrorReplyToStatus(reply.str(), Where(args[0]));
  return reply;
}

absl::StatusOr<RedisReply> RedisConnection::Command(const std::vector<std::string_view>& args,
                                                    absl::Duration timeout) {
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Execute(args, &timeout));
  if (reply.is_error()) return ErrorReplyToStatus(reply.str(), Where(args[0]));
  return reply;
}

absl::Status RedisConnection::Ping() { return Command({"PING"}).status(); }

absl::StatusOr<std::string> RedisConnection::LoadScript(const RedisScript& script) {
  NDX_ASSIGN_OR_RETURN(RedisReply reply, Command({"SCRIPT", "LOAD", script.source()}));
  NDX_ASSIGN_OR_RETURN(std::string sha, reply.AsString());
  script.set_sha(sha);
  return sha;
}

absl::StatusOr<RedisReply> RedisConnection::Eval(const RedisScript& script,
                                                 const std::vector<std::string_view>& keys,
                                                 const std::vector<std::string_view>& args) {
  std::string sha = script.sha();
  if (sha.empty()) {
    NDX_ASSIGN_OR_RETURN(sha, LoadScript(script));
  }
  const std::string num_keys = absl::StrCat(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha);
  argv.push_back(num_keys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());

  NDX_ASSIGN_OR_RETURN(RedisReply reply, Execute(argv, nullptr));
  if (IsNoScript(reply)) {
    // The server lost its script cache (SCRIPT FLUSH, restart, failover): load and retry once.
    NDX_ASSIGN_OR_RETURN(sha, LoadScript(script));
    argv[1] = sha;
    NDX_ASSIGN_OR_RETURN(reply, Execute(argv, nullptr));
  }
  if (reply.is_error()) return ErrorReplyToStatus(reply.str(), Where("EVALSHA"));
  return reply;
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::ExecutePipeline(
    const std::vector<std::vector<std::string_view>>& commands) {
  std::vector<RedisReply> replies;
  if (commands.empty()) return replies;
  for (const std::vector<std::string_view>& command : commands) {
    if (command.empty()) return absl::InvalidArgumentError(Where("empty command in a pipeline"));
  }
  NDX_ASSIGN_OR_RETURN(redisContext * context, EnsureConnected());
  const std::string where = Where(absl::StrCat("pipeline of ", commands.size()));
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::vector<std::string_view>& command : commands) {
    argv.clear();
    lengths.clear();
    for (std::string_view arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    // Only buffers the command (fails only when out of memory).
    if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Fail(ContextError(*context, errno, where, false));
    }
  }
  errno = 0;
  if (!Flush(context)) return Fail(ContextError(*context, errno, where, false));
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    const int rc = redisGetReply(context, &raw);
    const int saved_errno = errno;
    if (rc != REDIS_OK || raw == nullptr) {
      return Fail(ContextError(*context, saved_errno, where, false));
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    replies.push_back(CopyReply(*reply));
  }
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    const std::vector<std::vector<std::string_view>>& commands) {
  return ExecutePipeline(commands);
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(const RedisPipeline& pipeline) {
  using Entry = RedisPipeline::Entry;
  for (const Entry& entry : pipeline.entries_) {
    if (entry.script != nullptr && entry.script->sha().empty()) {
      NDX_RETURN_IF_ERROR(LoadScript(*entry.script).status());
    }
  }
  // Storage for the strings the commands point into (a deque never moves its elements).
  std::deque<std::string> storage;
  auto to_command = [&storage](const Entry& entry) {
    std::vector<std::string_view> command;
    if (entry.script != nullptr) {
      command.reserve(3 + entry.args.size());
      command.push_back("EVALSHA");
      command.push_back(storage.emplace_back(entry.script->sha()));
      command.push_back(storage.emplace_back(absl::StrCat(entry.num_keys)));
    } else {
      command.reserve(entry.args.size());
    }
    command.insert(command.end(), entry.args.begin(), entry.args.end());
    return command;
  };

  std::vector<std::vector<std::string_view>> commands;
  commands.reserve(pipeline.entries_.size());
  for (const Entry& entry : pipeline.entries_) commands.push_back(to_command(entry));
  NDX_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, ExecutePipeline(commands));

  // Script calls that met an empty script cache: load their scripts, send just them again.
  std::vector<size_t> retry;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (pipeline.entries_[i].script != nullptr && IsNoScript(replies[i])) retry.push_back(i);
  }
  if (retry.empty()) return replies;
  std::vector<const RedisScript*> reloaded;
  std::vector<std::vector<std::string_view>> again;
  for (size_t i : retry) {
    const RedisScript* script = pipeline.entries_[i].script;
    if (std::find(reloaded.begin(), reloaded.end(), script) == reloaded.end()) {
      NDX_RETURN_IF_ERROR(LoadScript(*script).status());
      reloaded.push_back(script);
    }
    again.push_back(to_command(pipeline.entries_[i]));
  }
  NDX_ASSIGN_OR_RETURN(std::vector<RedisReply> retried, ExecutePipeline(again));
  for (size_t j = 0; j < retry.size(); ++j) replies[retry[j]] = std::move(retried[j]);
  return replies;
}

// ---------------------------------------------------------------------------------------------
// RedisPool

RedisPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      connection_(std::exchange(other.connection_, nullptr)) {}

RedisPool::Lease& RedisPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    connection_ = std::exchange(other.connection_, nullptr);
  }
  return *this;
}

RedisPool::Lease::~Lease() { Release(); }

void RedisPool::Lease::Release() {
  if (pool_ != nullptr) pool_->Return(connection_);
  pool_ = nullptr;
  connection_ = nullptr;
}

RedisPool::RedisPool(RedisOptions options, int size, common::Clock& clock)
    : options_(std::move(options)), size_(size), clock_(clock) {
  NDX_CHECK(size >= 1);
}

RedisPool::~RedisPool() {
  absl::MutexLock lock(&mu_);
  NDX_CHECK(idle_.size() == connections_.size());  // every Lease was returned
}

absl::StatusOr<RedisPool::Lease> RedisPool::Acquire(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || static_cast<int>(connections_.size()) < size_;
  };
  if (!available() && !mu_.AwaitWithTimeout(absl::Condition(&available), timeout)) {
    return absl::ResourceExhaustedError(absl::StrCat("redis pool ", EndpointOf(options_), ": all ",
                                                     size_, " connections are busy (waited ",
                                                     absl::FormatDuration(timeout), ")"));
  }
  RedisConnection* connection = nullptr;
  if (!idle_.empty()) {
    connection = idle_.back();
    idle_.pop_back();
  } else {
    connections_.push_back(std::make_unique<RedisConnection>(options_, clock_));
    connection = connections_.back().get();
  }
  return Lease(this, connection);
}

int RedisPool::created() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(connections_.size());
}

void RedisPool::Return(RedisConnection* connection) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(connection);
}

}  // namespace ndx::redis
