#include "libs/common/redis/redis_coalescer.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ndx::redis {

RedisCoalescer::RedisCoalescer(RedisOptions options, common::Clock& clock)
    : connection_(std::move(options), clock) {}

absl::StatusOr<RedisReply> RedisCoalescer::Eval(const RedisScript& script,
                                                const std::vector<std::string_view>& keys,
                                                const std::vector<std::string_view>& args) {
  Call call{&script, &keys, &args, absl::UnknownError("not sent")};
  absl::MutexLock lock(&mu_);
  queue_.push_back(&call);
  while (true) {
    const auto ready = [this, &call]()
                           ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return call.done || !busy_; };
    mu_.Await(absl::Condition(&ready));
    if (call.done) return std::move(call.result);
    // The connection is idle: send everything queued so far, this call included.
    busy_ = true;
    std::vector<Call*> batch;
    batch.swap(queue_);
    round_trips_++;
    calls_ += static_cast<int64_t>(batch.size());
    mu_.Unlock();
    Send(batch);
    mu_.Lock();
    for (Call* c : batch) c->done = true;  // their threads read `result` after seeing `done`
    busy_ = false;
  }
}

void RedisCoalescer::Send(const std::vector<Call*>& batch) {
  if (batch.size() == 1) {
    Call& c = *batch[0];
    c.result = connection_.Eval(*c.script, *c.keys, *c.args);
    return;
  }
  // Scripts not loaded yet are loaded first (once; the SHA is cached in the script).
  for (Call* c : batch) {
    if (c->script->sha().empty()) {
      if (absl::StatusOr<std::string> sha = connection_.LoadScript(*c->script); !sha.ok()) {
        for (Call* f : batch) f->result = sha.status();
        return;
      }
    }
  }
  std::vector<std::string> shas, num_keys;
  shas.reserve(batch.size());
  num_keys.reserve(batch.size());
  std::vector<std::vector<std::string_view>> commands;
  commands.reserve(batch.size());
  for (Call* c : batch) {
    shas.push_back(c->script->sha());
    num_keys.push_back(absl::StrCat(c->keys->size()));
    std::vector<std::string_view>& command = commands.emplace_back();
    command.reserve(3 + c->keys->size() + c->args->size());
    command.push_back("EVALSHA");
    command.push_back(shas.back());
    command.push_back(num_keys.back());
    command.insert(command.end(), c->keys->begin(), c->keys->end());
    command.insert(command.end(), c->args->begin(), c->args->end());
  }
  absl::StatusOr<std::vector<RedisReply>> replies = connection_.Pipeline(commands);
  if (!replies.ok()) {
    for (Call* c : batch) c->result = replies.status();
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Call& c = *batch[i];
    RedisReply& reply = (*replies)[i];
    if (reply.is_error() && absl::StartsWith(reply.str(), "NOSCRIPT")) {
      // The server lost its scripts (restart, SCRIPT FLUSH): Eval reloads and sends it again.
      c.result = connection_.Eval(*c.script, *c.keys, *c.args);
    } else if (reply.is_error()) {
      c.result = ErrorReplyToStatus(reply.str(),
                                    absl::StrCat("redis ", connection_.endpoint(), ": EVALSHA"));
    } else {
      c.result = std::move(reply);
    }
  }
}

int64_t RedisCoalescer::round_trips() const {
  absl::MutexLock lock(&mu_);
  return round_trips_;
}

int64_t RedisCoalescer::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

}  // namespace ndx::redis
