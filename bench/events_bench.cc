#include "bench/events_bench.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/redis_probe.h"
#include "grpcpp/grpcpp.h"
#include "libs/common/clock.h"
#include "libs/common/status_macros.h"
#include "libs/events/event_json.h"
#include "libs/events/event_log.h"
#include "libs/queue/redis_queue.h"
#include "ndx/v1/event_stream.grpc.pb.h"

namespace ndx::bench {
namespace {

using Json = nlohmann::json;

void Progress(const std::string& message) {
  std::fprintf(stderr, "[ndx-bench] %s\n", message.c_str());
}

// The stored event: node-started of execution `id`, data {"t": <monotonic ns before Append>}.
std::string EventJson(const std::string& id, int64_t t_ns, int64_t i) {
  events::Event e;
  e.type = std::string(events::kNodeStarted);
  e.execution_id = id;
  e.workflow_id = "wf-bench";
  e.timestamp = absl::Now();
  e.node_id = "n2";
  e.node_name = "Total";
  e.node_type = "set";
  e.data = events::Json{{"t", t_ns}, {"i", i}};
  return events::ToJson(e);
}

// One EventStream.Subscribe for one execution, read with the callback API. Latencies are kept per
// subscriber (gRPC serializes one reactor's callbacks) and read after OnDone.
class Subscriber : public grpc::ClientReadReactor<v1::ExecutionEvent> {
 public:
  Subscriber(v1::EventStream::Stub* stub, const std::string& execution_id) {
    v1::SubscribeRequest request;
    request.set_execution_id(execution_id);
    stub->async()->Subscribe(&context_, &request, this);
    StartRead(&event_);  // before StartCall: a call ended at once may be freed before a later read
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const int64_t now = MonotonicNs();
    Json data = Json::parse(event_.data_json(), nullptr, /*allow_exceptions=*/false);
    if (data.is_object() && data.contains("t")) {
      if (data.value("warm", false)) {
        warm_.store(true);
      } else {
        latencies_ms_.push_back((now - data["t"].get<int64_t>()) / 1e6);
        received_.fetch_add(1);
      }
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& s) override {
    status_ = s;
    done_.Notify();
  }
  void Cancel() { context_.TryCancel(); }
  bool WaitDone(absl::Duration d) { return done_.WaitForNotificationWithTimeout(d); }
  bool warm() const { return warm_.load(); }
  int64_t received() const { return received_.load(); }
  // Only after WaitDone.
  const std::vector<double>& latencies_ms() const { return latencies_ms_; }
  const grpc::Status& status() const { return status_; }

 private:
  grpc::ClientContext context_;
  v1::ExecutionEvent event_;
  std::vector<double> latencies_ms_;
  std::atomic<bool> warm_{false};
  std::atomic<int64_t> received_{0};
  grpc::Status status_;
  absl::Notification done_;
};

}  // namespace

absl::StatusOr<std::vector<Json>> RunEventsBench(const EventsBenchOptions& o) {
  std::vector<Json> records;
  NDX_ASSIGN_OR_RETURN(redis::RedisOptions ro, redis::ParseRedisUrl(o.redis_url));
  ro.command_timeout = absl::Seconds(30);
  redis::RedisConnection control(ro);
  NDX_RETURN_IF_ERROR(control.Ping());

  // 1. Append rate.
  for (int threads : {1, 2, 4}) {
    NDX_RETURN_IF_ERROR(control.Command({"FLUSHALL"}).status());
    redis::RedisPool pool(ro, threads);
    events::EventLog log(pool, o.queue);
    std::vector<std::string> ids;
    for (int i = 0; i < o.executions; ++i) ids.push_back(queue::NewExecutionId());
    const std::string body = EventJson(ids[0], MonotonicNs(), 0);
    NDX_RETURN_IF_ERROR(log.Append(ids[0], "wf-bench", "ws-bench", body, absl::Hours(1)).status());
    NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(control));
    std::atomic<int64_t> count{0};
    std::atomic<bool> failed{false};
    const double cpu0 = SelfCpuUs();
    const int64_t start = MonotonicNs();
    const int64_t end = start + absl::ToInt64Nanoseconds(o.append_time);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int64_t i = t; MonotonicNs() < end && !failed; i += threads) {
          const std::string& id = ids[i % ids.size()];
          if (!log.Append(id, "wf-bench", "ws-bench", EventJson(id, MonotonicNs(), i),
                          absl::Hours(1))
                   .ok()) {
            failed = true;
            return;
          }
          count.fetch_add(1);
        }
      });
    }
    for (auto& t : ts) t.join();
    const double seconds = (MonotonicNs() - start) / 1e9;
    if (failed) return absl::InternalError("EventLog::Append failed");
    NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(control));
    JobCosts costs = CostsPerJob(before, after, count.load());
    Json r = {{"impl", "ndx"},
              {"mode", "append"},
              {"threads", threads},
              {"events", count.load()},
              {"seconds", seconds},
              {"events_per_s", count.load() / seconds},
              {"client_cpu_us_per_event", (SelfCpuUs() - cpu0) / count.load()},
              {"redis_cpu_util", costs.redis_cpu_us * count.load() / 1e6 / seconds},
              {"event_bytes", body.size()}};
    AddCosts(costs, r);
    Progress(r.dump());
    records.push_back(std::move(r));
  }

  // 2. Publish-to-client latency.
  NDX_RETURN_IF_ERROR(control.Command({"FLUSHALL"}).status());
  redis::RedisPool pool(ro, o.producers + 1);
  queue::QueueOptions qo;
  qo.name = o.queue;
  queue::RedisQueue q(pool, qo, common::RealClock());
  std::vector<std::string> ids;
  std::vector<queue::NewJob> jobs;
  for (int i = 0; i < o.executions; ++i) {
    ids.push_back(queue::NewExecutionId());
    jobs.push_back(queue::NewJob{
        .id = ids.back(),
        .payload = R"({"workflow":{"id":"wf-bench","nodes":[]},"workflowId":"wf-bench"})",
        .workspace = "ws-bench"});
  }
  NDX_RETURN_IF_ERROR(q.Enqueue(jobs).status());
  events::EventLog log(pool, o.queue);
  auto channel = grpc::CreateChannel(o.queue_target, grpc::InsecureChannelCredentials());
  auto stub = v1::EventStream::NewStub(channel);
  std::vector<std::unique_ptr<Subscriber>> subs;
  for (const std::string& id : ids) subs.push_back(std::make_unique<Subscriber>(stub.get(), id));
  // Warm up: one event per execution, until every subscriber has seen its own.
  bool all_warm = false;
  for (int attempt = 0; attempt < 20 && !all_warm; ++attempt) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (subs[i]->warm()) continue;
      events::Event e{.type = std::string(events::kNodeStarted),
                      .execution_id = ids[i],
                      .workflow_id = "wf-bench",
                      .timestamp = absl::Now()};
      e.data = events::Json{{"t", MonotonicNs()}, {"warm", true}};
      NDX_RETURN_IF_ERROR(
          log.Append(ids[i], "wf-bench", "ws-bench", events::ToJson(e), absl::Hours(1)).status());
    }
    absl::SleepFor(absl::Milliseconds(500));
    all_warm = true;
    for (auto& s : subs) all_warm = all_warm && s->warm();
  }
  if (!all_warm) {
    for (auto& s : subs) s->Cancel();
    for (auto& s : subs) s->WaitDone(absl::Seconds(5));
    for (auto& s : subs) {
      if (!s->status().ok()) {
        return absl::InternalError(absl::StrCat("a subscription ended: ", s->status().error_code(),
                                                " ", s->status().error_message()));
      }
    }
    return absl::InternalError("not every subscriber got its warm-up event within 10 s");
  }
  Progress(absl::StrCat(subs.size(), " subscribers live; appending at ", o.rate, "/s for ",
                        absl::FormatDuration(o.latency_time)));
  NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(control));
  const double queue_cpu0 = PidCpuUs(o.queue_pid).value_or(0);
  const double self_cpu0 = SelfCpuUs();
  const int64_t total = static_cast<int64_t>(o.rate * absl::ToDoubleSeconds(o.latency_time));
  const double interval_ns = 1e9 / o.rate;
  std::atomic<bool> failed{false};
  std::atomic<int64_t> late_starts{0};  // Append calls begun > 1 ms after their schedule
  const int64_t start = MonotonicNs();
  std::vector<std::thread> producers;
  for (int p = 0; p < o.producers; ++p) {
    producers.emplace_back([&, p] {
      for (int64_t i = p; i < total && !failed; i += o.producers) {
        const int64_t due = start + static_cast<int64_t>(i * interval_ns);
        int64_t now = MonotonicNs();
        if (due > now) {
          absl::SleepFor(absl::Nanoseconds(due - now));
          now = MonotonicNs();
        } else if (now - due > 1000000) {
          late_starts.fetch_add(1);
        }
        const std::string& id = ids[i % ids.size()];
        if (!log.Append(id, "wf-bench", "ws-bench", EventJson(id, now, i), absl::Hours(1)).ok()) {
          failed = true;
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  const double send_seconds = (MonotonicNs() - start) / 1e9;
  auto received = [&] {
    int64_t n = 0;
    for (auto& s : subs) n += s->received();
    return n;
  };
  const absl::Time wait_until = absl::Now() + absl::Seconds(5);
  while (received() < total && absl::Now() < wait_until) absl::SleepFor(absl::Milliseconds(10));
  NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(control));
  const double queue_cpu = PidCpuUs(o.queue_pid).value_or(0) - queue_cpu0;
  const double self_cpu = SelfCpuUs() - self_cpu0;
  const double phase_seconds = (MonotonicNs() - start) / 1e9;
  for (auto& s : subs) s->Cancel();
  for (auto& s : subs) s->WaitDone(absl::Seconds(10));
  if (failed) return absl::InternalError("EventLog::Append failed in the latency phase");
  std::vector<double> all;
  for (auto& s : subs) all.insert(all.end(), s->latencies_ms().begin(), s->latencies_ms().end());
  std::sort(all.begin(), all.end());
  JobCosts costs = CostsPerJob(before, after, total);
  Json r = {{"impl", "ndx"},
            {"mode", "event-latency"},
            {"subscribers", subs.size()},
            {"rate", o.rate},
            {"achieved_rate", total / send_seconds},
            {"seconds", absl::ToDoubleSeconds(o.latency_time)},
            {"producers", o.producers},
            {"events", total},
            {"received", all.size()},
            {"late_starts", late_starts.load()},
            {"p50_ms", PercentileOf(all, 50)},
            {"p90_ms", PercentileOf(all, 90)},
            {"p99_ms", PercentileOf(all, 99)},
            {"p999_ms", PercentileOf(all, 99.9)},
            {"max_ms", all.empty() ? 0 : all.back()},
            {"queue_cpu_us_per_event", queue_cpu / total},
            {"queue_cpu_util", queue_cpu / 1e6 / phase_seconds},
            {"bench_cpu_us_per_event", self_cpu / total},
            {"redis_cpu_util", costs.redis_cpu_us * total / 1e6 / phase_seconds}};
  AddCosts(costs, r);
  Progress(r.dump());
  records.push_back(std::move(r));
  return records;
}

}  // namespace ndx::bench
