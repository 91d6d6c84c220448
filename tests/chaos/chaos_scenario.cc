#include "tests/chaos/chaos_scenario.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/redis/redis_url.h"
#include "libs/common/status_macros.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "tests/testing/child_process.h"
#include "tests/testing/grpc_probe.h"
#include "tests/testing/http_sink.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/redis_server.h"

namespace ndx::chaos {
namespace {

using Json = nlohmann::json;
using testing::ChildProcess;

constexpr size_t kMaxProblems = 200;
const char kQueuePrefix[] = "ndx:{default}:";

// A service process that can be killed and started again with the same command, environment
// and log file (appended to).
class Service {
 public:
  Service(std::string name, std::vector<std::string> argv, std::map<std::string, std::string> env,
          std::string log, std::function<bool()> ready)
      : name_(std::move(name)),
        argv_(std::move(argv)),
        env_(std::move(env)),
        log_(std::move(log)),
        ready_(std::move(ready)) {}
  ~Service() { Stop(); }

  absl::Status Start(const std::map<std::string, std::string>& extra_env = {}) {
    std::map<std::string, std::string> env = env_;
    for (const auto& [k, v] : extra_env) env[k] = v;
    NDX_RETURN_IF_ERROR(process_.Start(argv_, log_, env));
    if (!ready_) return absl::OkStatus();
    const bool up = testing::WaitUntil([&] { return !process_.Running() || ready_(); },
                                       absl::Seconds(30), absl::Milliseconds(50));
    if (!up || !process_.Running()) {
      return absl::InternalError(absl::StrCat(name_, " did not come up; log ", log_, ":\n",
                                              testing::ReadFile(log_).substr(0, 4000)));
    }
    return absl::OkStatus();
  }
  void Kill() {
    process_.Signal(SIGKILL);
    process_.Wait();
  }
  void Stop() {
    if (!process_.Running()) return;
    process_.Signal(SIGTERM);
    if (!process_.WaitFor(absl::Seconds(10)).ok()) Kill();
  }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  const std::vector<std::string> argv_;
  const std::map<std::string, std::string> env_;
  const std::string log_;
  const std::function<bool()> ready_;
  ChildProcess process_;
};

bool Answers(const std::string& target) {
  return testing::CheckHealth(target, "", absl::Milliseconds(300)).ok();
}

std::string QueueTarget(int port) { return absl::StrCat("127.0.0.1:", port); }

bool IsTerminalState(const std::string& st) {
  return st == "c" || st == "f" || st == "t" || st == "x";
}

// The PostgreSQL status a Redis terminal state is recorded as.
std::string PgStatusOf(const std::string& st) {
  if (st == "c") return "SUCCESS";
  if (st == "f") return "ERROR";
  if (st == "t") return "TIMEOUT";
  if (st == "x") return "CANCELLED";
  return "?";
}

// What is known about one accepted execution.
struct Tracked {
  std::string id;
  bool sio = false;
  // Set once the Redis side was checked (shortly after the execution ended).
  bool verified = false;
  std::string state;   // the job's st when checked
  std::string error;   // its err, when not completed
  int64_t events = 0;  // length of its event log when checked
  int terminal_events = 0;
  bool terminal_last = false;
  int node_dups = 0;  // node-completed events beyond one per node
  std::string trace;  // the log in short (seq:type node@time), kept when something is wrong
  size_t nodes_completed = 0;
  std::map<std::string, absl::Time> checkpointed;  // node id -> its node-completed timestamp
  absl::Time expiry = absl::InfiniteFuture();      // when its keys must be gone
  std::vector<std::string> ttl_problems;
};

class Scenario {
 public:
  explicit Scenario(const ChaosOptions& o) : o_(o), rng_(o.seed) {}

  absl::StatusOr<ChaosReport> Run();

 private:
  void Progress(const std::string& message) {
    if (o_.verbose) {
      std::fprintf(stderr, "[chaos %6.1fs] %s\n", absl::ToDoubleSeconds(absl::Now() - start_),
                   message.c_str());
    }
  }
  void Problem(std::string line) {
    absl::MutexLock lock(&mu_);
    ++problem_count_;
    if (report_.problems.size() < kMaxProblems) report_.problems.push_back(std::move(line));
  }

  absl::Status StartEverything();
  std::map<std::string, std::string> BaseEnv() const;
  v1::ExecuteWorkflowRequest Request(int64_t n) const;
  void Submitter(int index, int count, absl::Time load_end);
  void Accept(const std::string& id, bool sio);
  void TailSioAccepted();
  void VerifierLoop();
  // Checks the Redis side of `t` if it ended at least `settle` ago (or `final`).
  void Verify(Tracked& t, bool final, absl::Duration settle);
  absl::Status InjectFault(const std::string& kind);
  absl::Status FinalChecks();
  void CheckKeys();
  absl::Status CheckPostgres(absl::Time deadline);
  void CheckSink();
  void CheckClients();

  const ChaosOptions& o_;
  std::mt19937 rng_;
  absl::Time start_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<testing::PostgresServer> pg_;
  std::unique_ptr<testing::HttpSink> sink_;
  int queue_ports_[2] = {0, 0};
  int gateway_port_ = 0;
  std::vector<std::unique_ptr<Service>> queues_;
  std::vector<std::unique_ptr<Service>> workers_;
  std::unique_ptr<Service> gateway_;
  int worker_generation_ = 0;
  int next_queue_restart_ = 0;
  std::unique_ptr<ChildProcess> clients_;
  std::string sio_out_, sio_accepted_;
  size_t sio_lines_taken_ = 0;

  absl::Mutex mu_;
  std::map<std::string, Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  ChaosReport report_ ABSL_GUARDED_BY(mu_);
  int64_t problem_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> stop_verifier_{false};
  std::unique_ptr<redis::RedisConnection> redis_conn_;  // the verifier's (then the final checks')
};

std::map<std::string, std::string> Scenario::BaseEnv() const {
  return {{"REDIS_URL", redis_->url()},
          {"DATABASE_URL", pg_->url("ndx")},
          {"NDX_LEASE", "2s"},
          {"NDX_MAX_STALLS", "20"},
          {"NDX_RETRY_BACKOFF", "200ms"},
          {"NDX_HOUSEKEEPING_INTERVAL", "200ms"},
          {"EXECUTION_COMPLETION_TTL", absl::StrCat(o_.completion_ttl_s)},
          {"EXECUTION_STATE_TTL", absl::StrCat(o_.state_ttl_s)},
          {"NDX_SHUTDOWN_GRACE", "1s"},
          {"NDX_LOG_LEVEL", "warn"}};
}

absl::Status Scenario::StartEverything() {
  redis_ =
      std::make_unique<testing::RedisServer>(testing::RedisServer::Options{.append_only = true});
  NDX_RETURN_IF_ERROR(redis_->Start());
  pg_ = std::make_unique<testing::PostgresServer>();
  NDX_RETURN_IF_ERROR(pg_->Start());
  NDX_RETURN_IF_ERROR(pg_->CreateDatabase("ndx"));
  sink_ = std::make_unique<testing::HttpSink>(o_.sink_delay);
  NDX_ASSIGN_OR_RETURN(redis::RedisOptions ro, redis::ParseRedisUrl(redis_->url()));
  redis_conn_ = std::make_unique<redis::RedisConnection>(ro);

  for (int i = 0; i < 2; ++i) {
    queue_ports_[i] = testing::FreePort();
    std::map<std::string, std::string> env = BaseEnv();
    env["NDX_QUEUE_ADDR"] = QueueTarget(queue_ports_[i]);
    env["NDX_QUEUE_METRICS_ADDR"] = "127.0.0.1:0";
    env["NDX_LOG_LEVEL"] = "info";  // history reconciliation is logged at info
    const std::string target = QueueTarget(queue_ports_[i]);
    queues_.push_back(std::make_unique<Service>(
        absl::StrCat("ndx-queue-", i), std::vector<std::string>{o_.queue_binary}, std::move(env),
        absl::StrCat(o_.log_dir, "/ndx-queue-", i, ".log"), [target] { return Answers(target); }));
    NDX_RETURN_IF_ERROR(queues_.back()->Start());
  }
  for (int i = 0; i < o_.workers; ++i) {
    std::map<std::string, std::string> env = BaseEnv();
    env["NDX_WORKER_ADDR"] = "127.0.0.1:0";
    env["NDX_WORKER_METRICS_ADDR"] = "127.0.0.1:0";
    env["EXECUTION_WORKER_CONCURRENCY"] = absl::StrCat(o_.worker_slots);
    workers_.push_back(std::make_unique<Service>(
        absl::StrCat("ndx-worker-", i), std::vector<std::string>{o_.worker_binary}, std::move(env),
        absl::StrCat(o_.log_dir, "/ndx-worker-", i, ".log"), nullptr));
    NDX_RETURN_IF_ERROR(workers_.back()->Start(
        {{"NDX_WORKER_ID", absl::StrCat("w", i, "-", ++worker_generation_)}}));
  }
  gateway_port_ = testing::FreePort();
  std::map<std::string, std::string> env = BaseEnv();
  env["NDX_GATEWAY_ADDR"] = absl::StrCat("127.0.0.1:", gateway_port_);
  // Both ndx-queue behind one channel: gRPC's pick_first moves to the other one when the one in
  // use goes away.
  env["NDX_QUEUE_SERVER"] =
      absl::StrCat("ipv4:", QueueTarget(queue_ports_[0]), ",", QueueTarget(queue_ports_[1]));
  env["NDX_AUTH"] = "none";
  env["NDX_EXECUTIONS_PER_MINUTE"] = "0";
  env["NDX_GATEWAY_RPC_TIMEOUT"] = "5s";
  const int gw = gateway_port_;
  gateway_ =
      std::make_unique<Service>("ndx-gateway", std::vector<std::string>{o_.gateway_binary},
                                std::move(env), absl::StrCat(o_.log_dir, "/ndx-gateway.log"), [gw] {
                                  absl::StatusOr<testing::HttpResult> h =
                                      testing::HttpGet(gw, "/health", absl::Milliseconds(500));
                                  return h.ok() && h->status > 0;
                                });
  NDX_RETURN_IF_ERROR(gateway_->Start());
  return absl::OkStatus();
}

v1::ExecuteWorkflowRequest Scenario::Request(int64_t n) const {
  v1::ExecuteWorkflowRequest r;
  r.set_request_id(absl::StrCat("grpc-", o_.seed, "-", n));
  v1::Workflow* wf = r.mutable_workflow();
  wf->set_id("wf-chaos-grpc");
  v1::Node* t = wf->add_nodes();
  t->set_id("t");
  t->set_name("Trigger");
  t->set_type("manual-trigger");
  std::string prev = "t";
  for (int i = 0; i < o_.http_nodes; ++i) {
    v1::Node* node = wf->add_nodes();
    node->set_id(absl::StrCat("h", i));
    node->set_name(absl::StrCat("Call ", i));
    node->set_type("http-request");
    node->set_parameters_json(Json{
        {"method", "POST"},
        {"url", sink_->url(absl::StrCat("/step", i))},
        {"body", "{}"}}.dump());
    v1::Connection* c = wf->add_connections();
    c->set_id(absl::StrCat("c", i));
    c->set_source_node_id(prev);
    c->set_target_node_id(node->id());
    prev = node->id();
  }
  r.set_workspace_id("chaos");
  return r;
}

void Scenario::Accept(const std::string& id, bool sio) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = tracked_.try_emplace(id);
  if (!inserted) return;  // a repeated start answered with the same id
  it->second.id = id;
  it->second.sio = sio;
  ++report_.accepted;
  ++(sio ? report_.accepted_sio : report_.accepted_grpc);
}

// Thread `index` of `count` starts executions n = index, index + count, ... at grpc_rate, each
// on ndx-queue n % 2 first, then alternating, with the same request_id until one answers.
void Scenario::Submitter(int index, int count, absl::Time load_end) {
  std::unique_ptr<v1::QueueService::Stub> stubs[2];
  for (int i = 0; i < 2; ++i) {
    stubs[i] = v1::QueueService::NewStub(
        grpc::CreateChannel(QueueTarget(queue_ports_[i]), grpc::InsecureChannelCredentials()));
  }
  const absl::Time begin = absl::Now();
  for (int64_t n = index;; n += count) {
    const absl::Time due = begin + absl::Seconds(n / o_.grpc_rate);
    if (due >= load_end) return;
    if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    const v1::ExecuteWorkflowRequest req = Request(n);
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    bool accepted = false;
    for (int attempt = 0; absl::Now() < give_up; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
      v1::ExecuteWorkflowResponse resp;
      const grpc::Status s = stubs[(n + attempt) % 2]->ExecuteWorkflow(&ctx, req, &resp);
      if (s.ok()) {
        Accept(resp.execution_id(), false);
        accepted = true;
        break;
      }
      if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        Problem(absl::StrCat("ExecuteWorkflow refused the request: ", s.error_message()));
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    if (!accepted) {
      absl::MutexLock lock(&mu_);
      ++report_.refused;
    }
  }
}

void Scenario::TailSioAccepted() {
  const std::string text = testing::ReadFile(sio_accepted_);
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  // Only whole lines (the last one may be half written).
  if (!text.empty() && text.back() != '\n' && !lines.empty()) lines.pop_back();
  for (; sio_lines_taken_ < lines.size(); ++sio_lines_taken_) Accept(lines[sio_lines_taken_], true);
}

void Scenario::VerifierLoop() {
  while (!stop_verifier_) {
    TailSioAccepted();
    std::vector<std::string> pending;
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, t] : tracked_) {
        if (!t.verified) pending.push_back(id);
      }
    }
    for (const std::string& id : pending) {
      if (stop_verifier_) break;
      Tracked copy;
      {
        absl::MutexLock lock(&mu_);
        copy = tracked_[id];
      }
      Verify(copy, false, absl::Seconds(1));
      absl::MutexLock lock(&mu_);
      tracked_[id] = std::move(copy);
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
}

void Scenario::Verify(Tracked& t, bool final, absl::Duration settle) {
  if (t.verified) return;
  const std::string jk = absl::StrCat(kQueuePrefix, "j:", t.id);
  const std::string ok = absl::StrCat(kQueuePrefix, "o:", t.id);
  const std::string ek = absl::StrCat(kQueuePrefix, "ev:", t.id);
  redis::RedisPipeline p;
  p.Add({"HMGET", jk, "st", "ft", "err"});
  p.Add({"LRANGE", ek, "0", "-1"});
  p.Add({"PTTL", jk});
  p.Add({"PTTL", ok});
  p.Add({"PTTL", ek});
  p.Add({"ZSCORE", absl::StrCat(kQueuePrefix, "unrecorded"), t.id});
  absl::StatusOr<std::vector<redis::RedisReply>> r = redis_conn_->Pipeline(p);
  if (!r.ok() || r->size() != 6) return;  // Redis restarting: next round
  const absl::Time now = absl::Now();
  const auto& fields = (*r)[0].elements();
  if (fields.size() != 3 || fields[0].is_nil()) return;  // unknown: lost or stuck, decided later
  const std::string st = fields[0].str();
  if (!IsTerminalState(st)) return;
  int64_t ft = 0;
  if (!fields[1].is_nil()) (void)absl::SimpleAtoi(fields[1].str(), &ft);
  if (!final && now < absl::FromUnixMillis(ft) + settle) return;
  // Ended, but its end is not in the history yet (the worker that ended it died first, or the
  // history refused the write): its keys have no TTL until housekeeping records it.
  const bool unrecorded = !(*r)[5].is_nil();
  if (unrecorded && !final) return;
  t.state = st;
  if (!fields[2].is_nil()) t.error = fields[2].str();
  const auto& events = (*r)[1].elements();
  t.events = static_cast<int64_t>(events.size());
  std::map<std::string, int> completed;
  std::string trace;
  for (size_t i = 0; i < events.size(); ++i) {
    const Json e = Json::parse(events[i].str(), nullptr, false);
    const std::string type = e.is_object() ? e.value("type", "") : "";
    if (e.is_object()) {
      const std::string ts = e.value("timestamp", "");
      absl::StrAppend(&trace, i + 1, ":", type, " ", e.value("nodeId", ""), "@",
                      ts.size() > 11 ? ts.substr(11) : ts, " ");
    }
    if (type == "completed" || type == "failed" || type == "cancelled") {
      ++t.terminal_events;
      t.terminal_last = i + 1 == events.size();
    }
    if (type == "node-completed") {
      const std::string node = e.value("nodeId", "");
      if (++completed[node] == 1) {
        absl::Time ts;
        std::string err;
        if (absl::ParseTime(absl::RFC3339_full, e.value("timestamp", ""), &ts, &err)) {
          t.checkpointed[node] = ts;
        }
      }
    }
  }
  t.nodes_completed = completed.size();
  for (const auto& [node, n] : completed) t.node_dups += n - 1;
  if (t.node_dups > 0 || t.terminal_events != 1 || !t.terminal_last) t.trace = std::move(trace);
  int64_t max_ttl = 0;
  const char* names[3] = {"j:", "o:", "ev:"};
  if (unrecorded) {
    t.ttl_problems.push_back(absl::StrCat(t.id, " ended but its end is still not recorded in the ",
                                          "history (on the unrecorded index)"));
  }
  for (int i = 0; i < 3 && !unrecorded; ++i) {
    const int64_t pttl = (*r)[2 + i].integer();
    if (pttl == -1) {
      t.ttl_problems.push_back(absl::StrCat(names[i], t.id, " has no expiry after the end"));
    } else if (pttl > int64_t{o_.completion_ttl_s} * 1000) {
      t.ttl_problems.push_back(absl::StrCat(names[i], t.id, " expires in ", pttl,
                                            " ms, beyond EXECUTION_COMPLETION_TTL"));
    }
    max_ttl = std::max(max_ttl, pttl);
  }
  t.expiry = now + absl::Milliseconds(max_ttl);
  t.verified = true;
}

absl::Status Scenario::InjectFault(const std::string& kind) {
  if (kind == "worker SIGKILL") {
    const size_t i = std::uniform_int_distribution<size_t>(0, workers_.size() - 1)(rng_);
    workers_[i]->Kill();
    Progress(absl::StrCat("SIGKILL ", workers_[i]->name(), "; started again"));
    return workers_[i]->Start({{"NDX_WORKER_ID", absl::StrCat("w", i, "-", ++worker_generation_)}});
  }
  if (kind == "redis restart") {
    redis_->Kill();
    Progress("SIGKILL redis-server; starting it again (AOF)");
    NDX_RETURN_IF_ERROR(redis_->Restart());
    Progress("redis-server is back");
    return absl::OkStatus();
  }
  if (kind == "postgres stop") {
    Progress(absl::StrCat("PostgreSQL stopped for ", absl::FormatDuration(o_.pg_outage)));
    pg_->Stop();
    return absl::OkStatus();
  }
  if (kind == "queue restart") {
    Service& q = *queues_[next_queue_restart_++ % 2];
    q.Kill();
    Progress(absl::StrCat("SIGKILL ", q.name(), "; starting it again"));
    return q.Start();
  }
  if (kind == "gateway restart") {
    gateway_->Kill();
    Progress("SIGKILL ndx-gateway; starting it again (Socket.IO clients reconnect)");
    return gateway_->Start();
  }
  return absl::InvalidArgumentError(kind);
}

absl::StatusOr<ChaosReport> Scenario::Run() {
  start_ = absl::Now();
  if (!std::filesystem::exists(o_.node_path + "/socket.io-client/package.json")) {
    return absl::FailedPreconditionError(
        absl::StrCat("no socket.io-client in ", o_.node_path, " (npm ci --prefix tests/e2e)"));
  }
  NDX_RETURN_IF_ERROR(StartEverything());
  const std::vector<std::string> rotation = {"worker SIGKILL", "redis restart",  "worker SIGKILL",
                                             "postgres stop",  "worker SIGKILL", "queue restart",
                                             "worker SIGKILL", "gateway restart"};
  // At least one full rotation while the load runs.
  const absl::Duration load = std::max(
      o_.load_duration, o_.first_fault + o_.fault_interval * static_cast<int64_t>(rotation.size()));
  Progress(absl::StrCat("all processes up; load for ", absl::FormatDuration(load), ": ",
                        o_.grpc_rate, " executions/s over gRPC, ", o_.sio_clients,
                        " Socket.IO clients starting one every ",
                        absl::FormatDuration(o_.sio_interval)));
  const absl::Time load_start = absl::Now();
  const absl::Time load_end = load_start + load;

  sio_out_ = o_.log_dir + "/sio-result.json";
  sio_accepted_ = o_.log_dir + "/sio-accepted.txt";
  std::filesystem::remove(sio_out_);
  std::filesystem::remove(sio_accepted_);
  clients_ = std::make_unique<ChildProcess>();
  NDX_RETURN_IF_ERROR(
      clients_->Start({o_.node,         o_.sio_script,
                       "--url",         absl::StrCat("http://127.0.0.1:", gateway_port_),
                       "--clients",     absl::StrCat(o_.sio_clients),
                       "--interval_ms", absl::StrCat(absl::ToInt64Milliseconds(o_.sio_interval)),
                       "--seconds",     absl::StrCat(absl::ToDoubleSeconds(load)),
                       "--sink",        sink_->url(""),
                       "--http_nodes",  absl::StrCat(o_.http_nodes),
                       "--out",         sio_out_,
                       "--accepted",    sio_accepted_,
                       "--drain_ms",    absl::StrCat(absl::ToInt64Milliseconds(o_.drain_timeout))},
                      o_.log_dir + "/sio-clients.log", {{"NODE_PATH", o_.node_path}}));

  constexpr int kSubmitters = 4;
  std::vector<std::thread> submitters;
  for (int i = 0; i < kSubmitters; ++i) {
    submitters.emplace_back([this, i, load_end] { Submitter(i, kSubmitters, load_end); });
  }
  std::thread verifier([this] { VerifierLoop(); });

  // Faults.
  absl::Status fault_status;
  absl::Time pg_back = absl::InfiniteFuture();
  absl::Time next = load_start + o_.first_fault;
  size_t k = 0;
  while (fault_status.ok()) {
    const absl::Time now = absl::Now();
    if (pg_back <= now) {
      fault_status = pg_->Restart();
      Progress("PostgreSQL is back");
      pg_back = absl::InfiniteFuture();
      continue;
    }
    if (next >= load_end && pg_back == absl::InfiniteFuture()) break;
    const absl::Time wake = next < load_end ? std::min(next, pg_back) : pg_back;
    if (wake > now) {
      absl::SleepFor(std::min(wake - now, absl::Milliseconds(100)));
      continue;
    }
    if (next < load_end) {
      const std::string& kind = rotation[k++ % rotation.size()];
      // One outage at a time.
      if (kind == "postgres stop" && pg_back != absl::InfiniteFuture()) {
        next += o_.fault_interval;
        continue;
      }
      fault_status = InjectFault(kind);
      if (kind == "postgres stop") pg_back = absl::Now() + o_.pg_outage;
      {
        absl::MutexLock lock(&mu_);
        ++report_.faults[kind];
      }
      next += o_.fault_interval;
    }
  }
  for (std::thread& t : submitters) t.join();
  Progress(absl::StrCat("load over; waiting for the executions to end"));
  if (!fault_status.ok()) {
    stop_verifier_ = true;
    verifier.join();
    return fault_status;
  }

  // Drain: every accepted execution terminal in Redis (checked by the verifier), and the
  // Socket.IO clients done.
  const absl::Time drain_deadline = absl::Now() + o_.drain_timeout;
  testing::WaitUntil(
      [&] {
        if (clients_->Running()) return false;
        absl::MutexLock lock(&mu_);
        for (const auto& [id, t] : tracked_) {
          if (!t.verified) return false;
        }
        return true;
      },
      drain_deadline - absl::Now(), absl::Milliseconds(200));
  if (clients_->Running()) {
    clients_->Signal(SIGKILL);
    clients_->Wait();
    Problem("the Socket.IO clients did not finish by the drain deadline");
  }
  stop_verifier_ = true;
  verifier.join();
  TailSioAccepted();
  NDX_RETURN_IF_ERROR(FinalChecks());
  // Stop the services before the servers they use.
  gateway_->Stop();
  for (auto& w : workers_) w->Stop();
  for (auto& q : queues_) q->Stop();
  absl::MutexLock lock(&mu_);
  report_.wall = absl::Now() - start_;
  report_.pg_outage = o_.pg_outage;
  if (problem_count_ > static_cast<int64_t>(report_.problems.size())) {
    report_.problems.push_back(
        absl::StrCat("... and ", problem_count_ - report_.problems.size(), " more problems"));
  }
  return report_;
}

absl::Status Scenario::FinalChecks() {
  Progress("checking Redis, PostgreSQL, the sink and the clients");
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, t] : tracked_) ids.push_back(id);
  }
  for (const std::string& id : ids) {
    Tracked t;
    {
      absl::MutexLock lock(&mu_);
      t = tracked_[id];
    }
    Verify(t, true, absl::ZeroDuration());
    absl::MutexLock lock(&mu_);
    tracked_[id] = std::move(t);
  }
  // Per execution: verdicts from the Redis side; late events; expiry.
  const absl::Time now = absl::Now();
  for (const std::string& id : ids) {
    Tracked t;
    {
      absl::MutexLock lock(&mu_);
      t = tracked_[id];
    }
    const std::string jk = absl::StrCat(kQueuePrefix, "j:", id);
    const std::string ek = absl::StrCat(kQueuePrefix, "ev:", id);
    const std::string ok = absl::StrCat(kQueuePrefix, "o:", id);
    if (!t.verified) {
      absl::StatusOr<redis::RedisReply> st = redis_conn_->Command({"HGET", jk, "st"});
      if (st.ok() && !st->is_nil()) {
        Problem(absl::StrCat("stuck: ", id, " is in state ", st->str(), " in Redis"));
        absl::MutexLock lock(&mu_);
        ++report_.stuck;
      } else {
        Problem(absl::StrCat("lost: ", id, " was accepted but has no record in Redis"));
        absl::MutexLock lock(&mu_);
        ++report_.lost;
      }
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      ++report_.logs_checked;
      ++(t.state == "c" ? report_.completed : report_.failed);
    }
    if (t.state != "c") {
      Problem(absl::StrCat("not completed: ", id, " ended in state ", t.state, ": ", t.error));
    }
    if (t.terminal_events != 1 || !t.terminal_last) {
      Problem(absl::StrCat("duplicated/missing terminal: ", id, " has ", t.terminal_events,
                           " terminal events", t.terminal_last ? "" : ", not last", ": ", t.trace));
      absl::MutexLock lock(&mu_);
      if (t.terminal_events != 1) ++report_.duplicated_terminal;
    }
    if (t.node_dups > 0) {
      Problem(absl::StrCat("duplicated node run: ", id, " has ", t.node_dups,
                           " extra node-completed events: ", t.trace));
      absl::MutexLock lock(&mu_);
      report_.duplicated_node_runs += t.node_dups;
    }
    if (t.state == "c" && t.nodes_completed != static_cast<size_t>(o_.http_nodes + 1)) {
      Problem(absl::StrCat(id, ": ", t.nodes_completed, " nodes completed of ", o_.http_nodes + 1));
    }
    for (const std::string& p : t.ttl_problems) {
      Problem(absl::StrCat("ttl: ", p));
      absl::MutexLock lock(&mu_);
      ++report_.ttl_violations;
    }
    // Events appended after the check (a late terminal event, a node run after the end).
    absl::StatusOr<redis::RedisReply> len = redis_conn_->Command({"LLEN", ek});
    if (len.ok() && len->integer() > 0 && len->integer() != t.events) {
      Problem(absl::StrCat("late events: ", id, " had ", t.events, " events when it ended, now ",
                           len->integer()));
      absl::MutexLock lock(&mu_);
      ++report_.duplicated_terminal;
    }
    // Keys whose expiry has passed must be gone (1.5 s of slack for Redis' active expiry).
    if (t.expiry + absl::Milliseconds(1500) < now) {
      absl::StatusOr<redis::RedisReply> n = redis_conn_->Command({"EXISTS", jk, ek, ok});
      const bool outlived = n.ok() && n->integer() > 0;
      {
        absl::MutexLock lock(&mu_);
        ++report_.ttl_checked;
        if (outlived) ++report_.ttl_violations;
      }
      if (outlived) Problem(absl::StrCat("ttl: keys of ", id, " outlived their expiry"));
    }
  }
  CheckKeys();
  CheckSink();
  CheckClients();
  return CheckPostgres(absl::Now() + o_.drain_timeout);
}

void Scenario::CheckKeys() {
  // Keys a queue keeps for good (its indexes and counters) and the outbox's; everything else must
  // expire.
  static const std::set<std::string> kQueueKeys = {
      "wait",   "seq",      "bands",     "delayed", "active", "deadlines", "completed",
      "failed", "timedout", "cancelled", "wake",    "hk",     "feed",      "unrecorded"};
  std::string cursor = "0";
  std::vector<std::string> keys;
  do {
    absl::StatusOr<redis::RedisReply> r = redis_conn_->Command({"SCAN", cursor, "COUNT", "1000"});
    if (!r.ok() || r->elements().size() != 2) {
      Problem(absl::StrCat("SCAN failed: ", r.status().ToString()));
      return;
    }
    cursor = r->elements()[0].str();
    for (const redis::RedisReply& k : r->elements()[1].elements()) keys.push_back(k.str());
  } while (cursor != "0");
  for (const std::string& key : keys) {
    absl::StatusOr<redis::RedisReply> pttl = redis_conn_->Command({"PTTL", key});
    if (!pttl.ok() || pttl->integer() == -2) continue;
    if (pttl->integer() >= 0) {
      if (pttl->integer() > int64_t{o_.state_ttl_s} * 1000) {
        Problem(absl::StrCat("ttl: ", key, " expires in ", pttl->integer(),
                             " ms, beyond EXECUTION_STATE_TTL"));
        absl::MutexLock lock(&mu_);
        ++report_.ttl_violations;
      }
      continue;
    }
    bool allowed = key == "ndx:queues";  // the names of the queues in use (a small set)
    if (!allowed && absl::StartsWith(key, "ndx:{") && key.find("}:") != std::string::npos) {
      const std::string rest = key.substr(key.find("}:") + 2);
      allowed = kQueueKeys.count(rest) > 0 || absl::StartsWith(rest, "sweep:") ||
                (absl::StartsWith(key, "ndx:{outbox}:") && (rest == "writes" || rest == "dead"));
    }
    if (!allowed) {
      Problem(absl::StrCat("ttl: ", key, " has no expiry"));
      absl::MutexLock lock(&mu_);
      ++report_.stray_keys;
    }
  }
  // The queue ends empty, and so does the outbox.
  for (const char* index : {"wait", "delayed", "active", "deadlines", "unrecorded"}) {
    absl::StatusOr<redis::RedisReply> n =
        redis_conn_->Command({"ZCARD", absl::StrCat(kQueuePrefix, index)});
    if (n.ok() && n->integer() > 0) {
      Problem(absl::StrCat("stuck: ", n->integer(), " jobs left in ", kQueuePrefix, index));
    }
  }
}

absl::Status Scenario::CheckPostgres(absl::Time deadline) {
  absl::StatusOr<std::unique_ptr<pg::PgPool>> pool =
      pg::PgPool::Create({.conninfo = pg_->url("ndx"), .size = 2});
  if (!pool.ok()) return pool.status();
  std::map<std::string, std::string> redis_state;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, t] : tracked_) {
      if (t.verified) redis_state[id] = t.state;
    }
  }
  std::vector<std::string> ids;
  for (const auto& [id, st] : redis_state) ids.push_back(id);
  const std::string array = absl::StrCat("{", absl::StrJoin(ids, ","), "}");
  std::map<std::string, std::string> status;
  std::map<std::string, std::map<std::string, int>> node_rows;
  int64_t outbox = -1;
  // Converged: the outbox drained, every execution's row terminal (the queue's reconciliation
  // records ends that a killed worker could not).
  const bool converged = testing::WaitUntil(
      [&] {
        absl::StatusOr<redis::RedisReply> n = redis_conn_->Command({"LLEN", "ndx:{outbox}:writes"});
        outbox = n.ok() ? n->integer() : -1;
        status.clear();
        absl::Status s = (*pool)->Run([&](pqxx::work& tx) {
          for (const auto& row : tx.exec_params(
                   "SELECT id, status FROM executions WHERE id = ANY($1::text[])", array)) {
            status[row[0].as<std::string>()] = row[1].as<std::string>();
          }
          return absl::OkStatus();
        });
        if (!s.ok() || outbox != 0) return false;
        for (const auto& [id, st] : redis_state) {
          auto it = status.find(id);
          if (it == status.end() || it->second == "RUNNING") return false;
        }
        return true;
      },
      deadline - absl::Now(), absl::Milliseconds(500));
  NDX_RETURN_IF_ERROR((*pool)->Run([&](pqxx::work& tx) {
    for (const auto& row : tx.exec_params(
             "SELECT execution_id, node_id, count(*) FROM node_executions WHERE execution_id = "
             "ANY($1::text[]) GROUP BY 1, 2",
             array)) {
      node_rows[row[0].as<std::string>()][row[1].as<std::string>()] = row[2].as<int>();
    }
    return absl::OkStatus();
  }));
  if (!converged) {
    Problem(
        absl::StrCat("PostgreSQL did not converge by the deadline (outbox length ", outbox, ")"));
  }
  absl::StatusOr<redis::RedisReply> dead = redis_conn_->Command({"LLEN", "ndx:{outbox}:dead"});
  if (dead.ok() && dead->integer() > 0) {
    Problem(absl::StrCat(dead->integer(), " history writes in the outbox's dead list"));
  }
  for (const auto& [id, st] : redis_state) {
    auto it = status.find(id);
    if (it == status.end()) {
      Problem(absl::StrCat("postgres: no row for ", id));
      absl::MutexLock lock(&mu_);
      ++report_.pg_mismatch;
      continue;
    }
    if (it->second == "RUNNING") {
      Problem(absl::StrCat("stuck: ", id, " is RUNNING in PostgreSQL"));
      absl::MutexLock lock(&mu_);
      ++report_.stuck;
      continue;
    }
    if (it->second != PgStatusOf(st)) {
      Problem(absl::StrCat("postgres: ", id, " is ", it->second, ", Redis says ", st));
      absl::MutexLock lock(&mu_);
      ++report_.pg_mismatch;
    }
    if (st == "c") {
      const auto& rows = node_rows[id];
      bool ok = rows.size() == static_cast<size_t>(o_.http_nodes + 1);
      for (const auto& [node, n] : rows) ok = ok && n == 1;
      if (!ok) {
        Problem(absl::StrCat("postgres: ", id, " has node rows for ", rows.size(), " nodes of ",
                             o_.http_nodes + 1, " (or several for one)"));
        absl::MutexLock lock(&mu_);
        ++report_.pg_mismatch;
      }
    }
  }
  return absl::OkStatus();
}

void Scenario::CheckSink() {
  std::vector<Tracked> done;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, t] : tracked_) {
      if (t.verified) done.push_back(t);
    }
  }
  int64_t after = 0, repeated = 0;
  for (const Tracked& t : done) {
    for (int i = 0; i < o_.http_nodes; ++i) {
      const std::string node = absl::StrCat("h", i);
      const std::vector<absl::Time> calls = sink_->call_times(absl::StrCat(t.id, ":", node));
      auto cp = t.checkpointed.find(node);
      if (cp == t.checkpointed.end()) continue;  // never completed: nothing to compare with
      if (calls.empty()) {
        Problem(absl::StrCat(t.id, " ", node, " completed without calling the sink"));
        continue;
      }
      int64_t late = 0;
      // The event's timestamp has millisecond precision: a call must come 1 ms after it to count.
      for (absl::Time c : calls) {
        if (c > cp->second + absl::Milliseconds(1)) ++late;
      }
      if (late > 0) {
        Problem(absl::StrCat("duplicated node effect: ", t.id, " ", node, " called ", late,
                             " time(s) after its checkpoint"));
      }
      after += late;
      repeated += static_cast<int64_t>(calls.size()) - 1 - late;
    }
  }
  absl::MutexLock lock(&mu_);
  report_.calls_after_checkpoint = after;
  report_.repeated_in_flight = repeated;
  report_.sink_calls = sink_->total();
}

void Scenario::CheckClients() {
  const Json r = Json::parse(testing::ReadFile(sio_out_), nullptr, false);
  if (!r.is_object()) {
    Problem(absl::StrCat("the Socket.IO clients wrote no result; their log:\n",
                         testing::ReadFile(o_.log_dir + "/sio-clients.log").substr(0, 2000)));
    return;
  }
  absl::MutexLock lock(&mu_);
  report_.client_reconnects = r.value("reconnects", 0);
  report_.client_redelivered = r.value("redelivered", 0);
  report_.refused += r.value("start_failures", 0);
  for (const auto& [id, e] : r["executions"].items()) {
    ++report_.client_logs;
    auto it = tracked_.find(id);
    const int64_t n = it != tracked_.end() && it->second.verified ? it->second.events : -1;
    const std::vector<int64_t> seqs = e["seqs"].get<std::vector<int64_t>>();
    bool whole = n > 0 && static_cast<int64_t>(seqs.size()) == n;
    for (size_t i = 0; whole && i < seqs.size(); ++i)
      whole = seqs[i] == static_cast<int64_t>(i + 1);
    if (whole) {
      ++report_.client_logs_whole;
    } else {
      ++problem_count_;
      if (report_.problems.size() < kMaxProblems) {
        std::string shown;
        for (size_t i = 0; i < seqs.size() && i < 40; ++i) absl::StrAppend(&shown, seqs[i], " ");
        report_.problems.push_back(absl::StrCat("client view: ", id, " received seqs [", shown,
                                                "] of a log of ", n, " events"));
      }
    }
  }
}

}  // namespace

bool ChaosReport::Clean() const {
  return accepted > 0 && lost == 0 && stuck == 0 && duplicated() == 0 && failed == 0 &&
         pg_mismatch == 0 && client_logs == client_logs_whole && ttl_violations == 0 &&
         stray_keys == 0 && problems.empty();
}

std::string ChaosReport::Summary() const {
  int total_faults = 0;
  std::vector<std::string> kinds;
  for (const auto& [kind, n] : faults) {
    total_faults += n;
    kinds.push_back(absl::StrCat(kind, " ", n));
  }
  std::string s = absl::StrFormat(
      "chaos summary: executions %d, faults injected %d, lost %d, duplicated %d, stuck %d -> "
      "%s\n",
      accepted, total_faults, lost, duplicated(), stuck, Clean() ? "CLEAN" : "PROBLEMS");
  absl::StrAppendFormat(&s,
                        "  executions: %d accepted (%d over gRPC, %d over Socket.IO), %d starts "
                        "never accepted; %d completed, %d ended otherwise; wall time %s\n",
                        accepted, accepted_grpc, accepted_sio, refused, completed, failed,
                        absl::FormatDuration(absl::Trunc(wall, absl::Milliseconds(100))));
  absl::StrAppend(&s, "  faults: ", absl::StrJoin(kinds, ", "), " (PostgreSQL down ",
                  absl::FormatDuration(pg_outage), " each time)\n");
  absl::StrAppendFormat(&s,
                        "  duplicated: %d extra terminal or late events, %d nodes completed "
                        "twice, %d sink calls after a node's checkpoint\n",
                        duplicated_terminal, duplicated_node_runs, calls_after_checkpoint);
  absl::StrAppendFormat(&s,
                        "  in-flight HTTP calls repeated after a crash (same Idempotency-Key, "
                        "node not yet checkpointed): %d of %d sink calls\n",
                        repeated_in_flight, sink_calls);
  absl::StrAppendFormat(&s,
                        "  event logs: %d read from Redis; Socket.IO clients saw %d of %d whole "
                        "(%d reconnects, %d overlapping events dropped on resubscribe)\n",
                        logs_checked, client_logs_whole, client_logs, client_reconnects,
                        client_redelivered);
  absl::StrAppendFormat(&s,
                        "  postgres: %d executions differ from Redis; TTL: %d executions' keys "
                        "checked gone after expiry, %d TTL violations, %d keys without expiry\n",
                        pg_mismatch, ttl_checked, ttl_violations, stray_keys);
  for (const std::string& p : problems) absl::StrAppend(&s, "  problem: ", p, "\n");
  return s;
}

absl::StatusOr<ChaosReport> RunChaos(const ChaosOptions& options) {
  Scenario scenario(options);
  return scenario.Run();
}

}  // namespace ndx::chaos
