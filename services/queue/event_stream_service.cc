#include "services/queue/event_stream_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/events/event_json.h"

namespace ndx::queue {

using EventPtr = std::shared_ptr<const v1::ExecutionEvent>;

// The state of one subscription. Owned by the dispatcher; the reactor only posts to it by id.
struct EventStreamService::Sub {
  enum class Kind { kExecution, kWorkflow, kAll };
  uint64_t id = 0;
  Reactor* reactor = nullptr;  // null once Finish was called: never touched again
  Kind kind = Kind::kExecution;
  std::string execution_id, workflow_id, workspace, queue;
  events::EventLog* log = nullptr;
  int64_t next_seq = 1;     // execution: the next seq to queue
  bool more_in_log = true;  // execution: the log may hold events not queued yet
  bool terminal_queued = false;
  std::deque<EventPtr> pending;  // front = the message being written, while `writing`
  bool writing = false;
  absl::Time write_started;
  absl::Time last_progress = absl::Now();
};

class EventStreamService::Reactor final : public grpc::ServerWriteReactor<v1::ExecutionEvent> {
 public:
  Reactor(EventStreamService* service, uint64_t id) : service_(service), id_(id) {}

  void OnWriteDone(bool ok) override {
    service_->Post([service = service_, id = id_, ok] {
      auto it = service->subs_.find(id);
      if (it == service->subs_.end()) return;
      Sub& sub = *it->second;
      sub.writing = false;
      if (!sub.pending.empty()) sub.pending.pop_front();
      if (!ok) return service->FinishSub(sub, absl::CancelledError("client went away"));
      service->Pump(sub);
    });
  }

  void OnCancel() override {
    service_->Post([service = service_, id = id_] {
      auto it = service->subs_.find(id);
      if (it != service->subs_.end()) {
        service->FinishSub(*it->second, absl::CancelledError("subscription cancelled"));
      }
    });
  }

  // After Finish, once every operation is over: the subscription (whose buffered messages an
  // in-flight write pointed to) can go.
  void OnDone() override {
    service_->Post([service = service_, id = id_] { service->subs_.erase(id); });
    delete this;
  }

 private:
  EventStreamService* service_;
  uint64_t id_;
};

EventStreamService::EventStreamService(redis::RedisPool& pool, redis::RedisOptions redis,
                                       Options options, Locator locator)
    : pool_(pool),
      redis_(std::move(redis)),
      options_(std::move(options)),
      locator_(std::move(locator)) {
  QueueNamed(options_.default_queue);
  dispatcher_ = std::thread([this] { Run(); });
}

EventStreamService::~EventStreamService() {
  {
    absl::MutexLock lock(&queues_mu_);
    for (auto& [name, q] : queues_) q->hub->Stop();
  }
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  dispatcher_.join();
}

size_t EventStreamService::subscriptions() const {
  absl::MutexLock lock(&mu_);
  return live_subs_;
}

EventStreamService::Queue& EventStreamService::QueueNamed(const std::string& name) {
  absl::MutexLock lock(&queues_mu_);
  std::unique_ptr<Queue>& q = queues_[name];
  if (q == nullptr) {
    q = std::make_unique<Queue>();
    q->log = std::make_unique<events::EventLog>(pool_, name);
    q->hub = std::make_unique<events::EventHub>(redis_, name);
    // One sink per queue; the dispatcher routes to subscriptions.
    q->hub->Subscribe({}, [this, name](const events::FeedEvent& e) {
      Post([this, name, e] { Route(name, e); });
    });
    q->hub->Start();
  }
  return *q;
}

void EventStreamService::Post(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  inbox_.push_back(std::move(work));
}

grpc::ServerWriteReactor<v1::ExecutionEvent>* EventStreamService::Subscribe(
    grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) {
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    live_subs_++;
  }
  auto* reactor = new Reactor(this, id);
  auto sub = std::make_shared<Sub>();
  sub->id = id;
  sub->reactor = reactor;
  sub->workspace = request->workspace_id();
  switch (request->selector_case()) {
    case v1::SubscribeRequest::kWorkflowId:
      sub->kind = Sub::Kind::kWorkflow;
      sub->workflow_id = request->workflow_id();
      break;
    case v1::SubscribeRequest::kAll:
      sub->kind = Sub::Kind::kAll;
      break;
    default:  // execution (StartSub rejects an empty id)
      sub->kind = Sub::Kind::kExecution;
      sub->execution_id = request->execution_id();
      sub->next_seq = std::max<int64_t>(0, request->after_seq()) + 1;
      break;
  }
  Post([this, sub] {
    subs_[sub->id] = sub;
    StartSub(*sub);
  });
  return reactor;
}

void EventStreamService::StartSub(Sub& sub) {
  if (sub.kind == Sub::Kind::kExecution) {
    if (sub.execution_id.empty()) {
      return FinishSub(
          sub, absl::InvalidArgumentError("one of execution_id, workflow_id or all is required"));
    }
    absl::StatusOr<std::string> queue = locator_(sub.execution_id, sub.workspace);
    if (!queue.ok()) return FinishSub(sub, queue.status());
    sub.queue = *queue;
    sub.log = QueueNamed(sub.queue).log.get();
    // Routed live events from now on, then the replay: what is appended in between arrives both
    // ways, and the seq check drops the copy.
    by_execution_[absl::StrCat(sub.queue, "/", sub.execution_id)].push_back(sub.id);
    Fill(sub, INT64_MAX);
  } else {
    feeds_.push_back(sub.id);
  }
  Pump(sub);
}

// Reads the execution's log from next_seq (up to `upto`), queueing what it finds, until the log
// is exhausted, the terminal event is queued, or the buffer is full.
void EventStreamService::Fill(Sub& sub, int64_t upto) {
  while (!sub.terminal_queued && sub.next_seq <= upto &&
         sub.pending.size() < options_.max_buffered) {
    const int64_t room = static_cast<int64_t>(options_.max_buffered - sub.pending.size());
    const int64_t want =
        std::min({options_.replay_chunk, upto - sub.next_seq + 1, std::max<int64_t>(room, 1)});
    absl::StatusOr<std::vector<events::StoredEvent>> chunk =
        sub.log->Read(sub.execution_id, sub.next_seq - 1, want);
    if (!chunk.ok()) {
      // Redis is down: keep the subscription; the idle poll tries again.
      log::Debug("event replay failed",
                 {{"execution", sub.execution_id}, {"error", chunk.status()}});
      sub.more_in_log = true;
      return;
    }
    for (const events::StoredEvent& e : *chunk) {
      auto proto = std::make_shared<v1::ExecutionEvent>();
      if (!events::ToProto(e.json, e.seq, proto.get()).ok()) continue;
      if (proto->workspace_id().empty()) proto->set_workspace_id(sub.workspace);
      sub.terminal_queued = events::IsTerminalType(proto->type_name());
      sub.pending.push_back(std::move(proto));
      sub.next_seq = e.seq + 1;
      sub.last_progress = absl::Now();
      if (sub.terminal_queued) break;
    }
    if (static_cast<int64_t>(chunk->size()) < want || sub.terminal_queued) {
      sub.more_in_log = false;
      return;
    }
  }
  sub.more_in_log = !sub.terminal_queued;
}

void EventStreamService::Route(const std::string& queue, const events::FeedEvent& e) {
  EventPtr proto;
  auto parsed = [&]() -> const EventPtr& {
    if (proto == nullptr) {
      auto p = std::make_shared<v1::ExecutionEvent>();
      if (events::ToProto(e.json, e.seq, p.get()).ok()) {
        p->set_workspace_id(e.workspace);
        proto = std::move(p);
      }
    }
    return proto;
  };
  auto it = by_execution_.find(absl::StrCat(queue, "/", e.execution_id));
  if (it != by_execution_.end()) {
    std::vector<uint64_t> ids = it->second;  // OnFeed may end subscriptions
    for (uint64_t id : ids) {
      auto s = subs_.find(id);
      if (s != subs_.end() && parsed() != nullptr) OnFeed(*s->second, e, proto);
    }
  }
  if (!feeds_.empty()) {
    std::vector<uint64_t> ids = feeds_;
    for (uint64_t id : ids) {
      auto s = subs_.find(id);
      if (s == subs_.end()) continue;
      Sub& sub = *s->second;
      if (!sub.workspace.empty() && sub.workspace != e.workspace) continue;
      if (sub.kind == Sub::Kind::kWorkflow && sub.workflow_id != e.workflow_id) continue;
      if (parsed() == nullptr) continue;
      auto with_cursor = std::make_shared<v1::ExecutionEvent>(*proto);
      with_cursor->set_cursor(e.cursor);
      OnFeed(sub, e, with_cursor);
    }
  }
}

void EventStreamService::OnFeed(Sub& sub, const events::FeedEvent& e, const EventPtr& proto) {
  if (sub.reactor == nullptr) return;
  if (sub.kind == Sub::Kind::kExecution) {
    if (!sub.workspace.empty() && sub.workspace != e.workspace) return;
    if (sub.terminal_queued || e.seq < sub.next_seq) return;  // already queued
    if (e.seq > sub.next_seq) Fill(sub, e.seq - 1);           // a gap: read it from the log
    if (e.seq != sub.next_seq || sub.terminal_queued) return Pump(sub);
    if (sub.pending.size() >= options_.max_buffered) {
      // The client reads slower than events arrive: stop buffering, catch up from the log.
      sub.more_in_log = true;
      return Pump(sub);
    }
    sub.terminal_queued = events::IsTerminalType(proto->type_name());
    sub.pending.push_back(proto);
    sub.next_seq = e.seq + 1;
    sub.last_progress = absl::Now();
    return Pump(sub);
  }
  if (sub.pending.size() >= options_.max_buffered) {
    return FinishSub(sub, absl::ResourceExhaustedError(absl::StrCat(
                              "subscriber too slow: more than ", options_.max_buffered,
                              " events buffered; resume with after_cursor = the last cursor "
                              "received")));
  }
  sub.pending.push_back(proto);
  Pump(sub);
}

void EventStreamService::Pump(Sub& sub) {
  if (sub.reactor == nullptr || sub.writing) return;
  if (sub.pending.empty()) {
    if (sub.kind == Sub::Kind::kExecution && sub.more_in_log && !sub.terminal_queued) {
      Fill(sub, INT64_MAX);
    }
    if (sub.pending.empty()) return;
  }
  sub.writing = true;
  sub.write_started = absl::Now();
  const v1::ExecutionEvent* next = sub.pending.front().get();
  if (sub.kind == Sub::Kind::kExecution && sub.terminal_queued && sub.pending.size() == 1) {
    // The terminal event ends an execution subscription. No OnWriteDone follows; `next` stays
    // valid until OnDone erases the subscription.
    sub.reactor->StartWriteAndFinish(next, grpc::WriteOptions(), grpc::Status::OK);
    sub.reactor = nullptr;
    by_execution_[absl::StrCat(sub.queue, "/", sub.execution_id)].clear();
    absl::MutexLock lock(&mu_);
    live_subs_--;
    return;
  }
  sub.reactor->StartWrite(next);
}

// Ends the stream with `status` (a write still in flight completes or fails on its own). The
// subscription itself is erased by the reactor's OnDone.
void EventStreamService::FinishSub(Sub& sub, absl::Status status) {
  if (sub.reactor == nullptr) return;
  sub.reactor->Finish(
      grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message())));
  sub.reactor = nullptr;
  if (sub.kind == Sub::Kind::kExecution) {
    auto it = by_execution_.find(absl::StrCat(sub.queue, "/", sub.execution_id));
    if (it != by_execution_.end()) {
      std::erase(it->second, sub.id);
      if (it->second.empty()) by_execution_.erase(it);
    }
  } else {
    std::erase(feeds_, sub.id);
  }
  absl::MutexLock lock(&mu_);
  live_subs_--;
}

void EventStreamService::Run() {
  absl::Time last_idle_check = absl::Now();
  while (true) {
    std::vector<std::function<void()>> work;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]()
                             ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !inbox_.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
      if (stop_) break;
      work.swap(inbox_);
    }
    for (auto& w : work) w();
    const absl::Time now = absl::Now();
    if (now - last_idle_check < absl::Milliseconds(100)) continue;
    last_idle_check = now;
    std::vector<uint64_t> ids;
    for (auto& [id, s] : subs_) ids.push_back(id);
    for (uint64_t id : ids) {
      auto it = subs_.find(id);
      if (it == subs_.end()) continue;
      Sub& s = *it->second;
      if (s.reactor == nullptr) continue;
      const bool backlog = !s.pending.empty() || s.more_in_log;
      if (s.writing && backlog && now - s.write_started > options_.stall_timeout) {
        FinishSub(s, absl::ResourceExhaustedError(absl::StrCat(
                         "subscriber too slow: no event accepted for ",
                         absl::FormatDuration(options_.stall_timeout),
                         " while more were waiting; resume with after_seq = the last seq "
                         "received")));
        continue;
      }
      // Quiet for a while: read the log again, in case a feed entry was lost.
      if (s.kind == Sub::Kind::kExecution && !s.writing && !s.terminal_queued &&
          now - s.last_progress >= options_.idle_poll) {
        s.more_in_log = true;
        s.last_progress = now;
        Pump(s);
      }
    }
  }
  // Shutting down (the gRPC server has already ended its calls): end what is left.
  for (auto& [id, s] : subs_) {
    if (s->reactor != nullptr) {
      s->reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
      s->reactor = nullptr;
    }
  }
}

}  // namespace ndx::queue
