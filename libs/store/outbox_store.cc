#include "libs/store/outbox_store.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

// KEYS[1] = writes; ARGV[1] = op, ARGV[2] = limit.
const redis::RedisScript kAppend(R"lua(
local n = redis.call('LLEN', KEYS[1])
if n >= tonumber(ARGV[2]) then
  return redis.error_reply('NDX_UNAVAILABLE PostgreSQL is unavailable and the history outbox is full (' ..
    n .. ' writes waiting)')
end
return redis.call('RPUSH', KEYS[1], ARGV[1])
)lua");

// KEYS[1] = writes, KEYS[2] = dead; ARGV[1] = the op expected at the head, ARGV[2] = "1" to move
// it to the dead list. Returns 1 if popped, 0 if the head is another op (someone popped it).
const redis::RedisScript kPopHead(R"lua(
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
if ARGV[2] == '1' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
)lua");

// KEYS[1] = lock; ARGV[1] = token.
const redis::RedisScript kUnlock(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua");

}  // namespace

OutboxStore::OutboxStore(PostgresExecutionStore& postgres, redis::RedisPool& redis,
                         OutboxOptions options)
    : postgres_(postgres),
      redis_(redis),
      options_(std::move(options)),
      writes_key_(options_.key_prefix + "writes"),
      dead_key_(options_.key_prefix + "dead"),
      lock_key_(options_.key_prefix + "lock") {}

OutboxStore::~OutboxStore() { StopDrainer(); }

absl::Status OutboxStore::Append(redis::RedisConnection& redis, const StoreWrite& write,
                                 bool is_create) {
  const int64_t hard = options_.hard_max_ops > 0 ? options_.hard_max_ops : 2 * options_.max_ops;
  const std::string limit = absl::StrCat(is_create ? options_.max_ops : hard);
  const std::string op = OutboxOpToJson({NewOpId(), write});
  return redis.Eval(kAppend, {writes_key_}, {op, limit}).status();
}

absl::Status OutboxStore::Write(const StoreWrite& write, bool is_create) {
  NDX_RETURN_IF_ERROR(ValidateWrite(write));
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis,
                       redis_.Acquire(options_.redis_acquire_timeout));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply len, redis->Command({"LLEN", writes_key_}));
  if (len.integer() == 0) {
    absl::Status s = postgres_.Apply(write);
    if (s.code() != absl::StatusCode::kUnavailable) return s;
    log::Warn("PostgreSQL unavailable; history write queued in the Redis outbox", {{"error", s}});
  }
  return Append(*redis, write, is_create);
}

absl::Status OutboxStore::CreateExecution(const NewExecution& execution) {
  return Write(execution, /*is_create=*/true);
}

absl::Status OutboxStore::MarkEnqueueFailed(const EnqueueFailure& failure) {
  return Write(failure, false);
}

absl::Status OutboxStore::StartAttempt(const AttemptStart& start) { return Write(start, false); }

absl::Status OutboxStore::RecordNodeRuns(absl::Span<const NodeRun> runs) {
  if (runs.empty()) return absl::OkStatus();
  return Write(std::vector<NodeRun>(runs.begin(), runs.end()), false);
}

absl::Status OutboxStore::FinishExecution(const ExecutionFinish& finish) {
  return Write(finish, false);
}

absl::StatusOr<ExecutionRecord> OutboxStore::GetExecution(absl::string_view id,
                                                          absl::string_view workspace_id,
                                                          const GetOptions& options) {
  return postgres_.GetExecution(id, workspace_id, options);
}

absl::StatusOr<ExecutionPage> OutboxStore::ListExecutions(const ListQuery& query) {
  return postgres_.ListExecutions(query);
}

absl::StatusOr<int64_t> OutboxStore::Prune(absl::Time created_before, int batch_size) {
  return postgres_.Prune(created_before, batch_size);
}

absl::Status OutboxStore::DeleteExecution(absl::string_view id, absl::string_view workspace_id,
                                          bool even_if_running) {
  // A queued write of this execution, replayed after the delete, would fail against the missing
  // row (and land in the dead list): delete only once the outbox is drained.
  NDX_ASSIGN_OR_RETURN(int64_t pending, Pending());
  if (pending > 0) {
    return absl::UnavailableError(
        absl::StrCat("history writes are still queued while PostgreSQL catches up (", pending,
                     " pending); try deleting again in a few seconds"));
  }
  return postgres_.DeleteExecution(id, workspace_id, even_if_running);
}

absl::StatusOr<int64_t> OutboxStore::Pending() {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis,
                       redis_.Acquire(options_.redis_acquire_timeout));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply len, redis->Command({"LLEN", writes_key_}));
  return len.integer();
}

absl::StatusOr<int64_t> OutboxStore::DeadLetters() {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis,
                       redis_.Acquire(options_.redis_acquire_timeout));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply len, redis->Command({"LLEN", dead_key_}));
  return len.integer();
}

absl::StatusOr<int> OutboxStore::DrainOnce() {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis,
                       redis_.Acquire(options_.redis_acquire_timeout));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply len, redis->Command({"LLEN", writes_key_}));
  if (len.integer() == 0) return 0;

  const std::string token = NewOpId();
  const std::string ttl = absl::StrCat(absl::ToInt64Milliseconds(options_.lock_ttl));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply locked,
                       redis->Command({"SET", lock_key_, token, "NX", "PX", ttl}));
  if (locked.is_nil()) return 0;  // another drainer is at work

  absl::StatusOr<int> result = [&]() -> absl::StatusOr<int> {
    NDX_ASSIGN_OR_RETURN(
        redis::RedisReply batch,
        redis->Command({"LRANGE", writes_key_, "0", absl::StrCat(options_.drain_batch - 1)}));
    int taken = 0;
    // Fast path: the whole batch in one transaction. When that fails (an op refused for good,
    // PostgreSQL away), the ops are applied one at a time below, which sorts the refused op out
    // (dead list) or stops at the transient failure.
    if (batch.elements().size() > 1) {
      std::vector<std::pair<std::string, StoreWrite>> ops;
      for (const redis::RedisReply& element : batch.elements()) {
        absl::StatusOr<OutboxOp> op = OutboxOpFromJson(element.str());
        if (!op.ok()) break;
        ops.emplace_back(std::move(op->op_id), std::move(op->write));
      }
      if (ops.size() == batch.elements().size() && postgres_.ApplyOnceAll(ops).ok()) {
        for (const redis::RedisReply& element : batch.elements()) {
          NDX_ASSIGN_OR_RETURN(
              redis::RedisReply popped,
              redis->Eval(kPopHead, {writes_key_, dead_key_}, {element.str(), "0"}));
          if (popped.integer() == 0) break;  // another drainer took over: it finds them applied
          ++taken;
        }
        return taken;
      }
    }
    for (const redis::RedisReply& element : batch.elements()) {
      const std::string& text = element.str();
      absl::StatusOr<OutboxOp> op = OutboxOpFromJson(text);
      absl::Status applied = op.ok() ? postgres_.ApplyOnce(op->op_id, op->write) : op.status();
      if (!applied.ok() && IsTransientStoreError(applied)) {
        if (taken == 0) return applied;
        break;
      }
      const bool dead = !applied.ok();
      if (dead) {
        log::Error("history outbox op refused by PostgreSQL; moved to the dead list",
                   {{"error", applied}, {"dead_list", dead_key_}});
      }
      NDX_ASSIGN_OR_RETURN(redis::RedisReply popped, redis->Eval(kPopHead, {writes_key_, dead_key_},
                                                                 {text, dead ? "1" : "0"}));
      if (popped.integer() == 0) break;  // another drainer took over: stop, re-read next pass
      ++taken;
    }
    return taken;
  }();
  // The lock lapses by itself if this fails.
  (void)redis->Eval(kUnlock, {lock_key_}, {token});
  return result;
}

void OutboxStore::StartDrainer() {
  absl::MutexLock lock(&thread_mu_);
  if (drainer_ != nullptr) return;
  stop_ = std::make_unique<absl::Notification>();
  absl::Notification* stop = stop_.get();
  drainer_ = std::make_unique<std::thread>([this, stop] {
    absl::Status last = absl::OkStatus();
    while (!stop->HasBeenNotified()) {
      absl::StatusOr<int> n = DrainOnce();
      if (!n.ok() && n.status().code() != last.code()) {
        log::Warn("history outbox drain failed; retrying", {{"error", n.status()}});
      }
      last = n.status();
      if (n.ok() && *n > 0) continue;
      stop->WaitForNotificationWithTimeout(options_.poll_interval);
    }
  });
}

void OutboxStore::StopDrainer() {
  std::unique_ptr<std::thread> thread;
  {
    absl::MutexLock lock(&thread_mu_);
    if (drainer_ == nullptr) return;
    stop_->Notify();
    thread = std::move(drainer_);
  }
  thread->join();
  absl::MutexLock lock(&thread_mu_);
  stop_.reset();
}

}  // namespace ndx::store
