#include "libs/events/event_log.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/queue/lua_scripts.h"

namespace ndx::events {
namespace {

constexpr absl::Duration kAcquire = absl::Seconds(2);

const redis::RedisScript& AppendScript() {
  static const redis::RedisScript* script = new redis::RedisScript(queue::lua::k_append_event);
  return *script;
}

}  // namespace

EventLog::EventLog(redis::RedisPool& pool, std::string queue)
    : pool_(pool), prefix_(absl::StrCat("ndx:{", queue, "}:")) {}

absl::StatusOr<int64_t> EventLog::Append(const std::string& execution_id,
                                         const std::string& workflow_id,
                                         const std::string& workspace,
                                         const std::string& event_json, absl::Duration ttl) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquire));
  const std::string ttl_s = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(ttl)));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply reply,
                       redis->Eval(AppendScript(), {prefix_},
                                   {execution_id, workflow_id, workspace, event_json, ttl_s}));
  return reply.AsInt();
}

absl::StatusOr<std::vector<StoredEvent>> EventLog::Read(const std::string& execution_id,
                                                        int64_t after_seq, int64_t limit) {
  if (after_seq < 0) after_seq = 0;
  if (limit <= 0) return std::vector<StoredEvent>{};
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquire));
  const std::string key = absl::StrCat(prefix_, "ev:", execution_id);
  const std::string start = absl::StrCat(after_seq);  // LRANGE index of seq after_seq + 1
  const std::string stop = absl::StrCat(after_seq + limit - 1);
  NDX_ASSIGN_OR_RETURN(redis::RedisReply reply, redis->Command({"LRANGE", key, start, stop}));
  std::vector<StoredEvent> out;
  out.reserve(reply.elements().size());
  int64_t seq = after_seq;
  for (const redis::RedisReply& e : reply.elements()) out.push_back({++seq, e.str()});
  return out;
}

absl::StatusOr<int64_t> EventLog::Length(const std::string& execution_id) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquire));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply reply,
                       redis->Command({"LLEN", absl::StrCat(prefix_, "ev:", execution_id)}));
  return reply.AsInt();
}

absl::StatusOr<bool> EventLog::Exists(const std::string& execution_id) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquire));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply reply,
                       redis->Command({"EXISTS", absl::StrCat(prefix_, "j:", execution_id),
                                       absl::StrCat(prefix_, "ev:", execution_id)}));
  NDX_ASSIGN_OR_RETURN(int64_t n, reply.AsInt());
  return n > 0;
}

}  // namespace ndx::events
