#include "libs/service/worker_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"

namespace ndx::service {
namespace {

constexpr absl::Duration kAcquireTimeout = absl::Seconds(2);

// Deletes field ARGV[1] of KEYS[1] only while it still holds ARGV[2]: a worker that reported
// again since the reader saw its old entry keeps the new one.
const redis::RedisScript& DeleteIfUnchanged() {
  static const redis::RedisScript* script = new redis::RedisScript(R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0)lua");
  return *script;
}

// Writes field ARGV[1] = ARGV[2] of KEYS[1] and (re)sets the hash's expiry to ARGV[3] seconds: the
// hash lives as long as some worker reports, like every other key (no key lives forever).
const redis::RedisScript& Write() {
  static const redis::RedisScript* script = new redis::RedisScript(R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('EXPIRE', KEYS[1], ARGV[3]))lua");
  return *script;
}

absl::Time ReportedAt(const v1::WorkerStatus& s) {
  return absl::FromUnixSeconds(s.reported_at().seconds()) +
         absl::Nanoseconds(s.reported_at().nanos());
}

}  // namespace

absl::Status WorkerRegistry::Report(v1::WorkerStatus status, absl::Time now) {
  if (status.worker_id().empty()) return absl::InvalidArgumentError("worker_id is required");
  const int64_t ns = absl::ToUnixNanos(now);
  status.mutable_reported_at()->set_seconds(ns / 1000000000);
  status.mutable_reported_at()->set_nanos(static_cast<int32_t>(ns % 1000000000));
  const std::string bytes = status.SerializeAsString();
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquireTimeout));
  const std::string ttl = absl::StrCat(absl::ToInt64Seconds(kStaleAfter) * 3);
  return redis->Eval(Write(), {kKey}, {status.worker_id(), bytes, ttl}).status();
}

absl::Status WorkerRegistry::Remove(const std::string& worker_id) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquireTimeout));
  return redis->Command({"HDEL", kKey, worker_id}).status();
}

absl::StatusOr<std::vector<v1::WorkerStatus>> WorkerRegistry::List(absl::Time now) {
  NDX_ASSIGN_OR_RETURN(redis::RedisPool::Lease redis, pool_.Acquire(kAcquireTimeout));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply all, redis->Command({"HGETALL", kKey}));
  std::vector<v1::WorkerStatus> live;
  const std::vector<redis::RedisReply>& kv = all.elements();
  for (size_t i = 0; i + 1 < kv.size(); i += 2) {
    v1::WorkerStatus s;
    const bool parsed = s.ParseFromString(kv[i + 1].str());
    if (parsed && now - ReportedAt(s) <= kStaleAfter) {
      live.push_back(std::move(s));
      continue;
    }
    NDX_RETURN_IF_ERROR(
        redis->Eval(DeleteIfUnchanged(), {kKey}, {kv[i].str(), kv[i + 1].str()}).status());
  }
  std::sort(live.begin(), live.end(), [](const v1::WorkerStatus& a, const v1::WorkerStatus& b) {
    return a.worker_id() < b.worker_id();
  });
  return live;
}

}  // namespace ndx::service
