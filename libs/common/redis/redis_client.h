// File: redis_client.h
//
// ndx::redis: the project's only Redis client (STYLE.md rule 17: hiredis appears nowhere else).
// Synchronous, RESP2, over hiredis 0.14, with every failure an absl::Status.
//
//   RedisConnection   one connection; NOT thread-safe. Reconnects by itself (lazily, with backoff).
//   RedisPool         N lazily created connections shared by many threads; Acquire() -> Lease.
//   RedisScript       a Lua script run by SHA (EVALSHA), loaded on first use and after NOSCRIPT.
//   RedisPipeline     commands and script calls sent in one round trip.
//   RedisReply        an owning copy of one reply (redis_reply.h); the error mapping is there too.
//   RedisOptions      endpoint, credentials, timeouts; ParseRedisUrl() (redis_url.h).
//
//   NDX_ASSIGN_OR_RETURN(ndx::redis::RedisOptions options, ndx::redis::ParseRedisUrl(url));
//   ndx::redis::RedisPool pool(options, /*size=*/8);
//
//   static const ndx::redis::RedisScript kClaim("local epoch = redis.call('INCR', KEYS[1]) ...");
//   NDX_ASSIGN_OR_RETURN(ndx::redis::RedisPool::Lease redis, pool.Acquire(absl::Seconds(1)));
//   NDX_RETURN_IF_ERROR(redis->Command({"SET", key, value}).status());
//   NDX_ASSIGN_OR_RETURN(ndx::redis::RedisReply r, redis->Eval(kClaim, {key}, {worker_id}));
//
// Status codes (see ErrorReplyToStatus() / IoErrorToStatus() in redis_reply.h for the full table):
//   UNAVAILABLE        Redis cannot be reached, the connection broke, or it is being re-established
//                      (also LOADING, BUSY, READONLY, ... replies): retry the call later.
//   DEADLINE_EXCEEDED  a command did not answer within its timeout (the connection is re-made).
//   UNAUTHENTICATED    wrong or missing password (WRONGPASS, NOAUTH).
//   RESOURCE_EXHAUSTED Redis is out of memory (OOM), or RedisPool::Acquire() found no connection.
//   NOT_FOUND          NOSCRIPT (only seen when the automatic reload failed too).
//   INTERNAL           any other error reply (ERR, WRONGTYPE, ...) or a protocol error.
//   any code           a script error "NDX_<CODE> message" becomes <CODE> with that message.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_reply.h"
#include "libs/common/redis/redis_url.h"

// hiredis' context, declared here so that its header stays inside this library.
struct redisContext;

namespace ndx::redis {

// ReconnectBackoff: when the next connect attempt is allowed. After a failure at time `now` the
// next attempt waits the current delay, which starts at `min` and doubles with each further
// failure up to `max`; Reset() (after a successful connect) starts over from `min`.
// Thread-compatible (RedisConnection owns one).
class ReconnectBackoff {
 public:
  ReconnectBackoff(absl::Duration min, absl::Duration max);

  // Records a failed (or broken) connection at `now`.
  void RecordFailure(absl::Time now);
  // Forgets all failures: an attempt is allowed at once and the next delay is `min`.
  void Reset();
  // How long until an attempt is allowed: zero when allowed now. Never more than the delay that
  // was chosen at the last failure, so a wall clock that jumps backwards cannot stall reconnects.
  absl::Duration Remaining(absl::Time now) const;
  // The delay that the next RecordFailure() will impose.
  absl::Duration next_delay() const { return next_delay_; }

 private:
  absl::Duration min_;
  absl::Duration max_;
  absl::Duration next_delay_;
  absl::Duration last_delay_ = absl::ZeroDuration();
  absl::Time not_before_ = absl::InfinitePast();
};

// RedisScript: a Lua script, run with EVALSHA by RedisConnection::Eval() or a RedisPipeline. The
// SHA1 comes from SCRIPT LOAD the first time the script is used and is cached here (the same SHA
// is valid on every server). Declare scripts once, for example as `static const` objects, and share
// them between connections and threads. Thread-safe.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  RedisScript(const RedisScript&) = delete;
  RedisScript& operator=(const RedisScript&) = delete;

  const std::string& source() const { return source_; }
  // The SHA1 reported by SCRIPT LOAD, or "" before the script was first loaded.
  std::string sha() const;

 private:
  friend class RedisConnection;
  void set_sha(std::string sha) const;

  const std::string source_;
  mutable absl::Mutex mu_;
  mutable std::string sha_ ABSL_GUARDED_BY(mu_);
};

// RedisPipeline: a list of commands and script calls for RedisConnection::Pipeline(), which sends
// them in one round trip. It copies the arguments, so they need not outlive it.
// Thread-compatible.
//
//   RedisPipeline p;
//   p.Add({"SET", "a", "1"}).Eval(kScript, {"a"}, {"5"}).Add({"GET", "a"});
//   NDX_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, connection.Pipeline(p));
class RedisPipeline {
 public:
  RedisPipeline() = default;

  // Appends a command: its name and arguments (binary-safe). Returns *this, for chaining.
  RedisPipeline& Add(const std::vector<std::string_view>& args);
  // Appends an EVALSHA of `script` with `keys` and `args`. Returns *this, for chaining.
  // REQUIRES: `script` outlives every Pipeline() call that sends this pipeline.
  RedisPipeline& Eval(const RedisScript& script, const std::vector<std::string_view>& keys,
                      const std::vector<std::string_view>& args);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  friend class RedisConnection;
  struct Entry {
    const RedisScript* script = nullptr;  // null: a plain command
    size_t num_keys = 0;                  // scripts: the first `num_keys` of `args` are keys
    std::vector<std::string> args;        // command name + arguments, or script keys + args
  };
  std::vector<Entry> entries_;
};

// RedisConnection: one connection to one Redis server.
//
// NOT thread-safe: use one RedisConnection per thread, or a RedisPool. Movable, not copyable.
//
// Construction does no I/O; the first call connects. Then, on every new connection: AUTH (when a
// password is set), SELECT (when db != 0), CLIENT SETNAME (when client_name is set). When the
// connection breaks (I/O error, EOF, timeout, protocol error) it is dropped and the call fails; the
// next call reconnects, but no sooner than the reconnect backoff allows (RedisOptions: 20 ms
// doubling to 1 s by default, decided with the injected Clock): before that, calls fail fast with
// UNAVAILABLE "reconnecting in N ms; last error: ...". So the same object keeps working across a
// Redis restart. A failed connect attempt also counts as a failure for the backoff.
//
// Commands that change the connection's state (SELECT, MULTI without EXEC, CLIENT REPLY, SUBSCRIBE,
// WATCH...) are the caller's business: a connection that is handed on (RedisPool) should be left
// as it was found, or Reset().
class RedisConnection {
 public:
  // `clock` decides the reconnect backoff; it must outlive the connection.
  explicit RedisConnection(RedisOptions options, common::Clock& clock = common::RealClock());
  ~RedisConnection();
  RedisConnection(RedisConnection&&) noexcept;
  RedisConnection& operator=(RedisConnection&&) noexcept;
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects now unless connected. Returns OK when connected; UNAVAILABLE when the server cannot
  // be reached (or the backoff has not elapsed yet), UNAUTHENTICATED when AUTH is refused,
  // INVALID_ARGUMENT when the options are unusable (empty host, port out of range, non-positive
  // timeout...), or what the AUTH/SELECT/CLIENT SETNAME error reply maps to.
  absl::Status Connect();

  // Drops the connection (no error, no backoff); the next call connects again.
  void Reset();

  // True when a connection is established (as far as the client knows: a server that died since
  // the last call is only noticed by the next call).
  bool connected() const { return context_ != nullptr; }

  // "127.0.0.1:6379" or "unix:/run/redis.sock", as used in messages.
  const std::string& endpoint() const { return endpoint_; }

  // Sends one command (`args` = name and arguments, binary-safe) and waits for its reply, with
  // the options' command timeout. Returns the reply: nil, integer, string, status or array, never
  // an error reply; an error reply becomes its status (ErrorReplyToStatus(): NDX_<CODE> script
  // errors -> <CODE>, LOADING/BUSY/... -> UNAVAILABLE, WRONGPASS/NOAUTH -> UNAUTHENTICATED, else
  // INTERNAL). Transport failures: UNAVAILABLE (cannot connect, connection lost, backoff),
  // DEADLINE_EXCEEDED (timeout), INTERNAL (protocol), RESOURCE_EXHAUSTED (out of memory);
  // INVALID_ARGUMENT when `args` is empty.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string_view>& args);

  // Command() with a timeout for this call only, for blocking commands (BLMOVE, BZPOPMIN, XREAD
  // BLOCK...): give the server-side block time plus a margin. absl::InfiniteDuration() waits
  // forever. Returns and fails as Command(); INVALID_ARGUMENT when `timeout` is not positive.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string_view>& args,
                                     absl::Duration timeout);

  // PING. OK, or the failures of Command().
  absl::Status Ping();

  // Runs `script` with EVALSHA, loading it first (SCRIPT LOAD) when its SHA is not known yet.
  // When the server answers NOSCRIPT (after SCRIPT FLUSH or a Redis restart) the script is loaded
  // again and the call is retried once. Returns what the script returned; errors as Command(),
  // so `redis.error_reply("NDX_ABORTED stale epoch")` in the script gives ABORTED "stale epoch".
  absl::StatusOr<RedisReply> Eval(const RedisScript& script,
                                  const std::vector<std::string_view>& keys,
                                  const std::vector<std::string_view>& args);

  // Sends the commands in one round trip (all written, then all replies read) and returns one
  // reply per command, in order. Error replies stay in the vector as RedisReply::Error (map them
  // with RedisReply::ToStatus()); the call fails only when the connection does (UNAVAILABLE,
  // DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED as Command()), in which case which commands
  // ran is unknown. INVALID_ARGUMENT when a command is empty. An empty list returns an empty
  // vector without I/O.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<std::vector<std::string_view>>& commands);

  // Sends a RedisPipeline in one round trip and returns its replies, in order, as above. Scripts
  // whose SHA is not known yet are loaded first. When script calls answer NOSCRIPT (the server
  // lost its scripts), their scripts are loaded and just those calls are sent again in a second
  // round trip, so they then run AFTER the pipeline's other commands: keep a pipeline whose
  // order matters across script calls in one script, or check the replies.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(const RedisPipeline& pipeline);

  // SCRIPT LOAD of `script`, caching the SHA in it. Returns the SHA; errors as Command().
  // Eval() and Pipeline() call it when needed; call it at startup to fail early on a bad script.
  absl::StatusOr<std::string> LoadScript(const RedisScript& script);

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  // Connects unless connected (respecting the backoff); returns the live context.
  absl::StatusOr<redisContext*> EnsureConnected();
  absl::StatusOr<ContextPtr> Open();
  // One command on the live connection; error replies are returned as replies.
  absl::StatusOr<RedisReply> Execute(const std::vector<std::string_view>& args,
                                     const absl::Duration* timeout);
  absl::StatusOr<std::vector<RedisReply>> ExecutePipeline(
      const std::vector<std::vector<std::string_view>>& commands);
  // Drops the context after a transport failure, feeding the backoff.
  absl::Status Fail(absl::Status status);
  // "redis <endpoint>: <what>"
  std::string Where(std::string_view what) const;

  RedisOptions options_;
  common::Clock* clock_;
  std::string endpoint_;
  ContextPtr context_;
  ReconnectBackoff backoff_;
  absl::Status last_error_;
};

// RedisPool: up to `size` RedisConnections to one server, created on demand (construction does
// no I/O; a new connection connects on its first command) and lent out one thread at a time.
// Thread-safe.
//
//   NDX_ASSIGN_OR_RETURN(RedisPool::Lease redis, pool.Acquire(absl::Milliseconds(200)));
//   NDX_ASSIGN_OR_RETURN(RedisReply reply, redis->Command({"INCR", key}));
//   // ~Lease gives the connection back.
class RedisPool {
 public:
  // Lease: exclusive use of one connection until destroyed (or moved from). Movable. Must not
  // outlive its pool. Use it from one thread at a time.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    RedisConnection& operator*() const { return *connection_; }
    RedisConnection* operator->() const { return connection_; }

   private:
    friend class RedisPool;
    Lease(RedisPool* pool, RedisConnection* connection) : pool_(pool), connection_(connection) {}
    void Release();

    RedisPool* pool_;
    RedisConnection* connection_;
  };

  // REQUIRES: size >= 1. `clock` (for the connections' reconnect backoff) outlives the pool.
  RedisPool(RedisOptions options, int size, common::Clock& clock = common::RealClock());
  // REQUIRES: no Lease is outstanding.
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // Lends a connection: an idle one (most recently returned first), else a new one while fewer
  // than `size` exist, else waits up to `timeout` for one to be returned. The connection may be
  // disconnected; its next command connects. Returns RESOURCE_EXHAUSTED ("all N connections are
  // busy") when none becomes free in time — the pool is too small for the load, which the caller
  // can tell apart from a slow Redis (DEADLINE_EXCEEDED from a command). A zero timeout does not
  // wait.
  absl::StatusOr<Lease> Acquire(absl::Duration timeout);

  int size() const { return size_; }
  // How many connections exist (created lazily; at most size()).
  int created() const;

 private:
  void Return(RedisConnection* connection);

  const RedisOptions options_;
  const int size_;
  common::Clock& clock_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<RedisConnection*> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndx::redis
