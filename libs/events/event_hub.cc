#include "libs/events/event_hub.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"

namespace ndx::events {
namespace {

constexpr absl::Duration kBlock = absl::Seconds(1);

// Field value of a stream entry ([k1, v1, k2, v2, ...]).
const std::string* FieldOf(const redis::RedisReply& fields, absl::string_view name) {
  const auto& f = fields.elements();
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    if (f[i].str() == name) return &f[i + 1].str();
  }
  return nullptr;
}

}  // namespace

EventHub::EventHub(redis::RedisOptions redis, std::string queue)
    : redis_options_(std::move(redis)), feed_key_(absl::StrCat("ndx:{", queue, "}:feed")) {}

EventHub::~EventHub() { Stop(); }

void EventHub::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void EventHub::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

uint64_t EventHub::Subscribe(Filter filter, Sink sink) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  subscribers_[id] = Subscriber{std::move(filter), std::move(sink)};
  return id;
}

void EventHub::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
}

size_t EventHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

std::string EventHub::position() const {
  absl::MutexLock lock(&mu_);
  return position_;
}

void EventHub::Dispatch(const FeedEvent& event) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, s] : subscribers_) {
    const Filter& f = s.filter;
    if (!f.execution_id.empty() && f.execution_id != event.execution_id) continue;
    if (!f.workflow_id.empty() && f.workflow_id != event.workflow_id) continue;
    if (!f.workspace.empty() && f.workspace != event.workspace) continue;
    s.sink(event);
  }
}

void EventHub::Run() {
  redis::RedisConnection redis(redis_options_);
  std::string last;  // the id read up to
  bool logged_down = false;
  while (!stop_) {
    if (last.empty()) {
      // Start at the feed's current end.
      absl::StatusOr<redis::RedisReply> tail =
          redis.Command({"XREVRANGE", feed_key_, "+", "-", "COUNT", "1"});
      if (!tail.ok()) {
        if (!logged_down) log::Warn("event feed unreachable", {{"error", tail.status()}});
        logged_down = true;
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      last = tail->elements().empty() ? "0-0" : tail->elements()[0].elements()[0].str();
      absl::MutexLock lock(&mu_);
      position_ = last;
    }
    absl::StatusOr<redis::RedisReply> reply =
        redis.Command({"XREAD", "COUNT", "1000", "BLOCK",
                       absl::StrCat(absl::ToInt64Milliseconds(kBlock)), "STREAMS", feed_key_, last},
                      kBlock + absl::Seconds(2));
    if (!reply.ok()) {
      if (!logged_down) log::Warn("event feed unreachable", {{"error", reply.status()}});
      logged_down = true;
      absl::SleepFor(absl::Milliseconds(50));
      continue;
    }
    if (logged_down) log::Info("event feed reachable again");
    logged_down = false;
    if (reply->is_nil() || reply->elements().empty()) continue;  // timeout
    // [[key, [[id, [f, v, ...]], ...]]]
    for (const redis::RedisReply& entry : reply->elements()[0].elements()[1].elements()) {
      FeedEvent e;
      e.cursor = entry.elements()[0].str();
      const redis::RedisReply& fields = entry.elements()[1];
      if (const std::string* v = FieldOf(fields, "e")) e.execution_id = *v;
      if (const std::string* v = FieldOf(fields, "s")) (void)absl::SimpleAtoi(*v, &e.seq);
      if (const std::string* v = FieldOf(fields, "w")) e.workflow_id = *v;
      if (const std::string* v = FieldOf(fields, "ws")) e.workspace = *v;
      if (const std::string* v = FieldOf(fields, "j")) e.json = *v;
      last = e.cursor;
      Dispatch(e);
      delivered_++;
    }
    absl::MutexLock lock(&mu_);
    position_ = last;
  }
}

}  // namespace ndx::events
