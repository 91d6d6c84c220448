#include "tools/ndx/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/nodedrop/workflow_json.h"
#include "ndx/v1/event_stream.grpc.pb.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "ndx/v1/worker_service.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::cli {
namespace {

using ::ndx::nodedrop::LoadWorkflowFile;
using ::ndx::nodedrop::ResolveNodeId;
using ::ndx::nodedrop::WorkflowFromNodeDropJson;

using Json = nlohmann::json;
using google::protobuf::util::TimeUtil;

constexpr char kUsage[] = R"(usage: ndx [--server HOST:PORT] [--rpc-timeout DURATION] COMMAND [ARGS]

commands:
  run FILE [--trigger NODE] [--data JSON] [--follow] [--timeout DURATION] [--queue Q] [--direct]
        run a NodeDrop workflow file (the editor's export, or {"workflow": {...}}); prints the
        execution id, or with --follow one line per node and the final output
  get ID [--json]             show an execution and its node runs
  list [--workflow ID] [--state STATE]... [--limit N] [--json]
                              list recorded executions, newest first
  cancel ID [--reason TEXT]   cancel an execution
  retry ID [--follow] [--timeout DURATION]
                              run a failed/cancelled/timed-out execution again from its completed nodes
  delete ID                   delete a finished execution (its history row and its Redis state)
  stats [--queue Q] [--json]  queue counters
  workers [--worker HOST:PORT]... [--json]
                              status of ndx-worker processes: asked directly with --worker (or
                              $NDX_WORKERS, comma-separated), else every live worker as it last
                              reported to the registry (QueueService.ListWorkers on --server)
  health [--service NAME]     grpc.health.v1 check of --server (any ndx gRPC port): exit 0 when
                              SERVING, 1 when NOT_SERVING, 2 when unreachable (for healthchecks)

options:
  --server HOST:PORT      ndx-queue's gRPC address (default: $NDX_SERVER, else 127.0.0.1:50051)
  --rpc-timeout DURATION  deadline of each call (default 10s); --timeout bounds --follow (default 1h)

exit codes: 0 ok (followed execution completed), 1 followed execution failed, was cancelled or
timed out, 2 usage, input, connection or request errors
)";

// Parsed command line: positional arguments and --options (repeatable; "" for flags).
struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> options;

  bool Has(const std::string& name) const { return options.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
  std::vector<std::string> GetAll(const std::string& name) const {
    std::vector<std::string> v;
    for (auto [it, end] = options.equal_range(name); it != end; ++it) v.push_back(it->second);
    return v;
  }
};

// Options that take a value; every other --option is a flag.
const std::map<std::string, bool>& KnownOptions() {
  static const auto* known = new std::map<std::string, bool>{
      {"server", true},  {"rpc-timeout", true}, {"trigger", true}, {"data", true},
      {"follow", false}, {"timeout", true},     {"queue", true},   {"direct", false},
      {"json", false},   {"workflow", true},    {"state", true},   {"limit", true},
      {"reason", true},  {"worker", true},      {"help", false},   {"service", true}};
  return *known;
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-h") {
      args.options.emplace("help", "");
      continue;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    auto known = KnownOptions().find(name);
    if (known == KnownOptions().end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
    if (known->second && !has_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = argv[++i];
    } else if (!known->second && has_value) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
    }
    args.options.emplace(name, value);
  }
  return args;
}

absl::StatusOr<absl::Duration> ParseDurationOption(const Args& args, const std::string& name,
                                                   absl::Duration fallback) {
  if (!args.Has(name)) return fallback;
  absl::Duration d;
  const std::string v = args.Get(name);
  if (!absl::ParseDuration(v, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " \"", v, "\": expected a positive duration such as 30s or 2m"));
  }
  return d;
}

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// The shared state of one invocation: streams, channels, deadlines.
class Cli {
 public:
  Cli(const Args& args, const CliEnv& env, std::ostream& out, std::ostream& err)
      : args_(args), out_(out), err_(err) {
    server_ = args.Get("server", env.server.empty() ? kDefaultServer : env.server);
    workers_env_ = env.workers;
  }

  int Run();

 private:
  int Usage(const std::string& problem) {
    err_ << "ndx: " << problem << "\n\n" << kUsage;
    return kExitUsage;
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
    grpc::ChannelArguments ch;
    ch.SetMaxReceiveMessageSize(256 << 20);  // EXECUTION_VIEW_FULL may carry large outputs
    ch.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    ch.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ch);
  }

  void SetDeadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(absl::ToInt64Milliseconds(rpc_timeout_)));
  }

  // Reports a failed call on stderr with a hint; returns kExitUsage.
  int RpcError(const std::string& what, const grpc::Status& s, const std::string& target) {
    err_ << "ndx: " << what << " failed: " << CodeName(s.error_code()) << ": " << s.error_message()
         << "\n";
    switch (s.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
        err_ << "ndx: cannot reach " << target
             << ". Is it running? Point ndx at it with --server HOST:PORT or NDX_SERVER"
             << (target == server_ ? "" : " (workers: --worker HOST:PORT or NDX_WORKERS)") << ".\n";
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        err_ << "ndx: " << target << " did not answer within " << absl::FormatDuration(rpc_timeout_)
             << "; raise --rpc-timeout or check the server's health.\n";
        break;
      case grpc::StatusCode::UNIMPLEMENTED:
        err_ << "ndx: this server does not implement that call yet.\n";
        break;
      default:
        break;
    }
    return kExitUsage;
  }

  int CmdRun();
  int CmdGet();
  int CmdList();
  int CmdCancel();
  int CmdRetry();
  int CmdDelete();
  int CmdStats();
  int CmdWorkers();
  int CmdHealth();

  // Follows `id` until its terminal event, printing progress; then prints the result. Returns
  // the exit code.
  int Follow(const std::string& id);
  absl::StatusOr<v1::Execution> GetExecution(const std::string& id, grpc::Status* status);
  // The stored events of `id` up to `last_seq` (0: until the stream ends, which it does after a
  // terminal event); fewer when the log expired or the call failed.
  std::vector<v1::ExecutionEvent> ReplayEvents(const std::string& id, int64_t last_seq);

  template <typename Message>
  void PrintJson(const Message& m) {
    std::string s;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = true;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &s, o);
    out_ << s;
    if (s.empty() || s.back() != '\n') out_ << "\n";
  }

  const Args& args_;
  std::ostream& out_;
  std::ostream& err_;
  std::string server_;
  std::string workers_env_;
  absl::Duration rpc_timeout_ = absl::Seconds(10);
  std::unique_ptr<v1::QueueService::Stub> queue_;
  std::unique_ptr<v1::EventStream::Stub> events_;
};

int Cli::Run() {
  if (args_.Has("help")) {
    out_ << kUsage;
    return kExitOk;
  }
  if (args_.positional.empty()) return Usage("no command given");
  absl::StatusOr<absl::Duration> t = ParseDurationOption(args_, "rpc-timeout", rpc_timeout_);
  if (!t.ok()) return Usage(std::string(t.status().message()));
  rpc_timeout_ = *t;
  const std::string& cmd = args_.positional[0];
  if (cmd == "health") return CmdHealth();
  std::shared_ptr<grpc::Channel> channel = Channel(server_);
  queue_ = v1::QueueService::NewStub(channel);
  events_ = v1::EventStream::NewStub(channel);
  if (cmd == "workers") return CmdWorkers();
  if (cmd == "run") return CmdRun();
  if (cmd == "get") return CmdGet();
  if (cmd == "list") return CmdList();
  if (cmd == "cancel") return CmdCancel();
  if (cmd == "retry") return CmdRetry();
  if (cmd == "delete") return CmdDelete();
  if (cmd == "stats") return CmdStats();
  if (cmd == "help") {
    out_ << kUsage;
    return kExitOk;
  }
  return Usage(absl::StrCat("unknown command \"", cmd, "\""));
}

int Cli::CmdRun() {
  if (args_.positional.size() != 2) return Usage("run needs exactly one workflow FILE");
  absl::StatusOr<v1::Workflow> wf = LoadWorkflowFile(args_.positional[1]);
  if (!wf.ok()) {
    err_ << "ndx: " << wf.status().message() << "\n";
    return kExitUsage;
  }
  v1::ExecuteWorkflowRequest req;
  if (args_.Has("trigger")) {
    absl::StatusOr<std::string> id = ResolveNodeId(*wf, args_.Get("trigger"));
    if (!id.ok()) return Usage(absl::StrCat("--trigger: ", id.status().message()));
    req.set_trigger_node_id(*id);
  }
  if (args_.Has("data")) {
    const std::string data = args_.Get("data");
    if (Json::parse(data, nullptr, false).is_discarded()) {
      return Usage(absl::StrCat("--data is not valid JSON: ", data,
                                " (quote it for the shell, e.g. --data '{\"name\": \"Ada\"}')"));
    }
    req.set_trigger_data_json(data);
  }
  if (args_.Has("direct")) {
    if (args_.Has("queue")) return Usage("--direct and --queue exclude each other");
    req.set_use_queue(false);
  }
  req.set_queue(args_.Get("queue"));
  absl::StatusOr<absl::Duration> follow_timeout =
      ParseDurationOption(args_, "timeout", absl::Hours(1));
  if (!follow_timeout.ok()) return Usage(std::string(follow_timeout.status().message()));
  *req.mutable_workflow() = std::move(*wf);

  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::ExecuteWorkflowResponse resp;
  grpc::Status s = queue_->ExecuteWorkflow(&ctx, req, &resp);
  if (!s.ok()) {
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      err_ << "ndx: the server rejected " << args_.positional[1] << ": " << s.error_message()
           << "\n";
      return kExitUsage;
    }
    return RpcError("ExecuteWorkflow", s, server_);
  }
  if (!args_.Has("follow")) {
    out_ << resp.execution_id() << "\n";
    return kExitOk;
  }
  out_ << "execution " << resp.execution_id() << " ("
       << (resp.mode() == v1::EXECUTION_MODE_DIRECT ? "direct" : "queued") << ", "
       << StateName(resp.state()) << ")\n";
  out_.flush();
  return Follow(resp.execution_id());
}

int Cli::Follow(const std::string& id) {
  absl::StatusOr<absl::Duration> follow_timeout =
      ParseDurationOption(args_, "timeout", absl::Hours(1));
  if (!follow_timeout.ok()) return Usage(std::string(follow_timeout.status().message()));
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(*follow_timeout));
  int64_t last_seq = 0;
  int resubscribes = 0;
  bool terminal = false;
  std::vector<v1::ExecutionEvent> seen;
  while (!terminal) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    v1::SubscribeRequest req;
    req.set_execution_id(id);
    req.set_after_seq(last_seq);
    std::unique_ptr<grpc::ClientReader<v1::ExecutionEvent>> reader = events_->Subscribe(&ctx, req);
    v1::ExecutionEvent ev;
    while (reader->Read(&ev)) {
      last_seq = ev.seq();
      resubscribes = 0;
      const std::string line = FormatEventLine(ev);
      if (!line.empty()) out_ << line << "\n" << std::flush;
      seen.push_back(ev);
      if (ev.type() == v1::EVENT_TYPE_COMPLETED || ev.type() == v1::EVENT_TYPE_FAILED ||
          ev.type() == v1::EVENT_TYPE_CANCELLED) {
        terminal = true;
        ctx.TryCancel();
        break;
      }
    }
    grpc::Status s = reader->Finish();
    if (terminal || s.ok()) break;  // OK without a terminal event: read the execution below
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      err_ << "ndx: execution " << id << " has not finished within --timeout "
           << absl::FormatDuration(*follow_timeout) << "; it goes on: `ndx get " << id
           << "` shows it, `ndx cancel " << id << "` stops it.\n";
      return kExitUsage;
    }
    // A broken stream (server restart, slow reader): subscribe again after what we have seen.
    if ((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) &&
        ++resubscribes <= 5) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << resubscribes));
      continue;
    }
    return RpcError("EventStream.Subscribe", s, server_);
  }
  grpc::Status s;
  absl::StatusOr<v1::Execution> e = GetExecution(id, &s);
  if (!e.ok()) return RpcError("GetExecution", s, server_);
  FillNodeRunsFromEvents(seen, &*e);
  out_ << FormatResult(*e);
  switch (e->state()) {
    case v1::EXECUTION_STATE_COMPLETED:
      return kExitOk;
    case v1::EXECUTION_STATE_FAILED:
    case v1::EXECUTION_STATE_CANCELLED:
    case v1::EXECUTION_STATE_TIMED_OUT:
      return kExitExecutionFailed;
    default:
      err_ << "ndx: the event stream ended while execution " << id << " is "
           << StateName(e->state()) << "; follow it again with `ndx get " << id << "`.\n";
      return kExitUsage;
  }
}

absl::StatusOr<v1::Execution> Cli::GetExecution(const std::string& id, grpc::Status* status) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::GetExecutionRequest req;
  req.set_execution_id(id);
  req.set_view(v1::EXECUTION_VIEW_FULL);
  v1::Execution e;
  *status = queue_->GetExecution(&ctx, req, &e);
  if (!status->ok()) return absl::UnknownError(status->error_message());
  return e;
}

std::vector<v1::ExecutionEvent> Cli::ReplayEvents(const std::string& id, int64_t last_seq) {
  std::vector<v1::ExecutionEvent> events;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::SubscribeRequest req;
  req.set_execution_id(id);
  std::unique_ptr<grpc::ClientReader<v1::ExecutionEvent>> reader = events_->Subscribe(&ctx, req);
  v1::ExecutionEvent ev;
  while (reader->Read(&ev)) {
    events.push_back(ev);
    if (last_seq > 0 && ev.seq() >= last_seq) {
      ctx.TryCancel();  // the log of a running execution never ends by itself
      break;
    }
  }
  (void)reader->Finish();
  return events;
}

int Cli::CmdGet() {
  if (args_.positional.size() != 2) return Usage("get needs exactly one execution ID");
  grpc::Status s;
  absl::StatusOr<v1::Execution> e = GetExecution(args_.positional[1], &s);
  if (!e.ok()) return RpcError("GetExecution", s, server_);
  const bool terminal =
      e->state() == v1::EXECUTION_STATE_COMPLETED || e->state() == v1::EXECUTION_STATE_FAILED ||
      e->state() == v1::EXECUTION_STATE_CANCELLED || e->state() == v1::EXECUTION_STATE_TIMED_OUT;
  if (e->node_executions().empty() && (e->last_seq() > 0 || terminal)) {
    // The server did not report node runs: rebuild them from the event log (best effort; the log
    // expires EXECUTION_COMPLETION_TTL after the end).
    FillNodeRunsFromEvents(ReplayEvents(e->id(), e->last_seq()), &*e);
  }
  if (args_.Has("json")) {
    PrintJson(*e);
  } else {
    out_ << FormatExecution(*e, absl::Now());
  }
  return kExitOk;
}

int Cli::CmdList() {
  if (args_.positional.size() != 1) return Usage("list takes no positional argument");
  v1::ListExecutionsRequest req;
  req.set_workflow_id(args_.Get("workflow"));
  for (const std::string& st : args_.GetAll("state")) {
    std::string name = absl::AsciiStrToUpper(st);
    std::replace(name.begin(), name.end(), '-', '_');
    std::replace(name.begin(), name.end(), ' ', '_');
    v1::ExecutionState state;
    if (!v1::ExecutionState_Parse(absl::StrCat("EXECUTION_STATE_", name), &state) ||
        state == v1::EXECUTION_STATE_UNSPECIFIED) {
      return Usage(absl::StrCat("--state \"", st,
                                "\": expected waiting, delayed, active, cancelling, completed, "
                                "failed, cancelled or timed_out"));
    }
    req.add_states(state);
  }
  if (args_.Has("limit")) {
    int limit = 0;
    if (!absl::SimpleAtoi(args_.Get("limit"), &limit) || limit <= 0 || limit > 100) {
      return Usage("--limit: expected a number from 1 to 100");
    }
    req.set_page_size(limit);
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::ListExecutionsResponse resp;
  grpc::Status s = queue_->ListExecutions(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    err_ << "ndx: listing executions is not available on " << server_
         << ": its ListExecutions answers UNIMPLEMENTED (" << s.error_message()
         << "). Look executions up by id with `ndx get ID`.\n";
    return kExitUsage;
  }
  if (!s.ok()) return RpcError("ListExecutions", s, server_);
  if (args_.Has("json")) {
    PrintJson(resp);
  } else {
    out_ << FormatExecutionList(resp);
  }
  return kExitOk;
}

int Cli::CmdCancel() {
  if (args_.positional.size() != 2) return Usage("cancel needs exactly one execution ID");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::CancelExecutionRequest req;
  req.set_execution_id(args_.positional[1]);
  req.set_reason(args_.Get("reason"));
  v1::Execution e;
  grpc::Status s = queue_->CancelExecution(&ctx, req, &e);
  if (!s.ok()) return RpcError("CancelExecution", s, server_);
  out_ << "execution " << e.id() << ": " << StateName(e.state())
       << (e.state() == v1::EXECUTION_STATE_CANCELLING ? " (its runner stops within moments)" : "")
       << "\n";
  return kExitOk;
}

int Cli::CmdDelete() {
  if (args_.positional.size() != 2) return Usage("delete needs exactly one execution ID");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::DeleteExecutionRequest req;
  req.set_execution_id(args_.positional[1]);
  v1::DeleteExecutionResponse resp;
  grpc::Status s = queue_->DeleteExecution(&ctx, req, &resp);
  if (!s.ok()) return RpcError("DeleteExecution", s, server_);
  out_ << "execution " << resp.execution_id() << " deleted\n";
  return kExitOk;
}

int Cli::CmdRetry() {
  if (args_.positional.size() != 2) return Usage("retry needs exactly one execution ID");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::RetryExecutionRequest req;
  req.set_execution_id(args_.positional[1]);
  v1::Execution e;
  grpc::Status s = queue_->RetryExecution(&ctx, req, &e);
  if (!s.ok()) return RpcError("RetryExecution", s, server_);
  if (!args_.Has("follow")) {
    out_ << e.id() << "\n";
    return kExitOk;
  }
  out_ << "execution " << e.id() << " (retry of " << e.retry_of_execution_id() << ", "
       << StateName(e.state()) << ")\n"
       << std::flush;
  return Follow(e.id());
}

int Cli::CmdStats() {
  if (args_.positional.size() != 1) return Usage("stats takes no positional argument");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::GetQueueStatsRequest req;
  req.set_queue(args_.Get("queue"));
  v1::GetQueueStatsResponse resp;
  grpc::Status s = queue_->GetQueueStats(&ctx, req, &resp);
  if (!s.ok()) return RpcError("GetQueueStats", s, server_);
  if (args_.Has("json")) {
    PrintJson(resp);
  } else {
    out_ << FormatStatsTable(resp);
  }
  return kExitOk;
}

int Cli::CmdWorkers() {
  if (args_.positional.size() != 1) return Usage("workers takes no positional argument");
  std::vector<std::string> targets = args_.GetAll("worker");
  if (targets.empty()) {
    for (absl::string_view t : absl::StrSplit(workers_env_, ',', absl::SkipWhitespace())) {
      targets.emplace_back(absl::StripAsciiWhitespace(t));
    }
  }
  if (targets.empty()) {
    // No addresses: the registry, through ndx-queue.
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::ListWorkersResponse resp;
    grpc::Status s = queue_->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp);
    if (!s.ok()) return RpcError("ListWorkers", s, server_);
    if (args_.Has("json")) {
      PrintJson(resp);
    } else if (resp.workers().empty()) {
      out_ << "no worker has reported in the last 10 s\n";
    } else {
      for (const v1::WorkerStatus& st : resp.workers()) {
        out_ << st.worker_id() << "\n" << FormatWorkerStatus(st, absl::Now());
      }
    }
    return kExitOk;
  }
  int rc = kExitOk;
  for (const std::string& target : targets) {
    std::unique_ptr<v1::WorkerService::Stub> stub = v1::WorkerService::NewStub(Channel(target));
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::WorkerStatus st;
    grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &st);
    if (!s.ok()) {
      rc = RpcError(absl::StrCat("WorkerService.GetStatus on ", target), s, target);
      continue;
    }
    if (args_.Has("json")) {
      PrintJson(st);
    } else {
      out_ << target << "\n" << FormatWorkerStatus(st, absl::Now());
    }
  }
  return rc;
}

// grpc.health.v1.Health/Check through the generic stub: the request and the response are tiny,
// so they are encoded by hand instead of linking a copy of health.proto.
int Cli::CmdHealth() {
  if (args_.positional.size() != 1) return Usage("health takes no positional argument");
  const std::string service = args_.Get("service");
  if (service.size() > 127) return Usage("--service: at most 127 characters");
  std::string request;
  if (!service.empty()) {
    request.push_back(static_cast<char>((1 << 3) | 2));  // field 1, length-delimited
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::GenericStub stub(Channel(server_));
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::CompletionQueue cq;
  grpc::Slice slice(request);
  auto call =
      stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::ByteBuffer(&slice, 1), &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  (void)cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return RpcError("grpc.health.v1.Health/Check", status, server_);
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  google::protobuf::UnknownFieldSet fields;
  int serving = 0;  // UNKNOWN
  if (fields.ParseFromString(bytes)) {
    for (int i = 0; i < fields.field_count(); ++i) {
      if (fields.field(i).number() == 1 &&
          fields.field(i).type() == google::protobuf::UnknownField::TYPE_VARINT) {
        serving = static_cast<int>(fields.field(i).varint());
      }
    }
  }
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  out_ << server_ << (service.empty() ? "" : absl::StrCat(" ", service)) << ": "
       << (serving >= 0 && serving <= 3 ? kNames[serving] : "UNKNOWN") << "\n";
  return serving == 1 ? kExitOk : kExitExecutionFailed;
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC",
                          absl::FromUnixMillis(TimeUtil::TimestampToMilliseconds(t)),
                          absl::UTCTimeZone());
}

std::string Ago(const google::protobuf::Timestamp& t, absl::Time now) {
  if (t.seconds() == 0 && t.nanos() == 0) return "never";
  absl::Duration d = now - absl::FromUnixMillis(TimeUtil::TimestampToMilliseconds(t));
  return absl::StrCat(absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1))), " ago");
}

std::string NodeStateName(v1::NodeState s) {
  switch (s) {
    case v1::NODE_STATE_RUNNING:
      return "running";
    case v1::NODE_STATE_WAITING:
      return "waiting";
    case v1::NODE_STATE_COMPLETED:
      return "completed";
    case v1::NODE_STATE_FAILED:
      return "failed";
    case v1::NODE_STATE_SKIPPED:
      return "skipped";
    case v1::NODE_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

std::string ErrorText(const v1::ExecutionError& e) {
  std::string s = e.message();
  if (!e.code().empty()) absl::StrAppend(&s, " [", e.code(), "]");
  return s;
}

std::string NodeLabel(const std::string& name, const std::string& id) {
  if (name.empty() || name == id) return absl::StrCat("\"", id, "\"");
  return absl::StrCat("\"", name, "\" (", id, ")");
}

}  // namespace

int RunCli(const std::vector<std::string>& argv, const CliEnv& env, std::ostream& out,
           std::ostream& err) {
  absl::StatusOr<Args> args = ParseArgs(argv);
  if (!args.ok()) {
    err << "ndx: " << args.status().message() << "\n\n" << kUsage;
    return kExitUsage;
  }
  return Cli(*args, env, out, err).Run();
}

std::string StateName(v1::ExecutionState state) {
  switch (state) {
    case v1::EXECUTION_STATE_WAITING:
      return "waiting";
    case v1::EXECUTION_STATE_DELAYED:
      return "delayed";
    case v1::EXECUTION_STATE_ACTIVE:
      return "active";
    case v1::EXECUTION_STATE_CANCELLING:
      return "cancelling";
    case v1::EXECUTION_STATE_COMPLETED:
      return "completed";
    case v1::EXECUTION_STATE_FAILED:
      return "failed";
    case v1::EXECUTION_STATE_CANCELLED:
      return "cancelled";
    case v1::EXECUTION_STATE_TIMED_OUT:
      return "timed out";
    default:
      return "unknown";
  }
}

std::string FormatEventLine(const v1::ExecutionEvent& ev) {
  const Json data =
      ev.data_json().empty() ? Json::object() : Json::parse(ev.data_json(), nullptr, false);
  auto duration = [&]() -> std::string {
    if (!data.is_object()) return "";
    auto it = data.find("duration");
    if (it == data.end() || !it->is_number()) return "";
    return absl::StrCat(it->get<int64_t>(), " ms");
  };
  const std::string node = absl::StrCat(ev.node_name().empty() ? ev.node_id() : ev.node_name(),
                                        " (", ev.node_type(), ")");
  switch (ev.type()) {
    case v1::EVENT_TYPE_STARTED:
      return absl::StrCat("started    attempt ", std::max(ev.attempt(), 1));
    case v1::EVENT_TYPE_NODE_STARTED:
      return "";
    case v1::EVENT_TYPE_NODE_COMPLETED:
      return absl::StrCat("  completed  ", node, "  ", duration(),
                          ev.truncated() ? "  (output truncated in the event)" : "");
    case v1::EVENT_TYPE_NODE_FAILED:
      return absl::StrCat("  failed     ", node, "  ", duration(), "  ", ErrorText(ev.error()));
    case v1::EVENT_TYPE_NODE_SKIPPED:
      return absl::StrCat("  skipped    ", node);
    case v1::EVENT_TYPE_RETRYING: {
      const int64_t delay = TimeUtil::DurationToMilliseconds(ev.retry_delay());
      if (!ev.node_id().empty()) {
        return absl::StrCat("  retrying   ", node, "  try ", ev.node_attempt(), " in ", delay,
                            " ms");
      }
      return absl::StrCat("retrying   attempt ", ev.attempt(), " in ", delay, " ms");
    }
    case v1::EVENT_TYPE_COMPLETED:
    case v1::EVENT_TYPE_FAILED: {
      std::string word = ev.type() == v1::EVENT_TYPE_COMPLETED                   ? "completed"
                         : ev.execution_state() == v1::EXECUTION_STATE_TIMED_OUT ? "timed out"
                                                                                 : "failed";
      const std::string d = duration();
      return d.empty() ? word : absl::StrFormat("%-9s  in %s", word, d);
    }
    case v1::EVENT_TYPE_CANCELLED:
      return "cancelled";
    default:
      return absl::StrCat("event      ", ev.type_name());
  }
}

void FillNodeRunsFromEvents(const std::vector<v1::ExecutionEvent>& events, v1::Execution* e) {
  if (!e->node_executions().empty()) return;
  for (const v1::ExecutionEvent& ev : events) {
    v1::NodeState state;
    switch (ev.type()) {
      case v1::EVENT_TYPE_NODE_COMPLETED:
        state = v1::NODE_STATE_COMPLETED;
        break;
      case v1::EVENT_TYPE_NODE_FAILED:
        state = v1::NODE_STATE_FAILED;
        break;
      case v1::EVENT_TYPE_NODE_SKIPPED:
        state = v1::NODE_STATE_SKIPPED;
        break;
      default:
        continue;
    }
    v1::NodeExecution* n = e->add_node_executions();
    n->set_node_id(ev.node_id());
    n->set_node_name(ev.node_name());
    n->set_node_type(ev.node_type());
    n->set_state(state);
    n->set_attempt(ev.attempt());
    if (ev.has_error()) *n->mutable_error() = ev.error();
    const Json data = Json::parse(ev.data_json().empty() ? "{}" : ev.data_json(), nullptr, false);
    if (!data.is_object()) continue;
    if (auto d = data.find("duration"); d != data.end() && d->is_number()) {
      n->set_duration_ms(d->get<int64_t>());
    }
    if (auto o = data.find("outputData"); o != data.end() && state == v1::NODE_STATE_COMPLETED) {
      Json output = *o;
      if (ev.truncated() && output.is_object()) output["truncated"] = true;
      n->set_output_json(output.dump());
    }
  }
}

std::string FormatResult(const v1::Execution& e) {
  std::string out;
  if (e.state() == v1::EXECUTION_STATE_COMPLETED) {
    const v1::NodeExecution* last = nullptr;
    for (const v1::NodeExecution& n : e.node_executions()) {
      if (n.state() == v1::NODE_STATE_COMPLETED) last = &n;
    }
    if (last == nullptr || last->output_json().empty()) {
      return "result: completed (the server reported no node output)\n";
    }
    Json output = Json::parse(last->output_json(), nullptr, false);
    const bool truncated = output.is_object() && output.value("truncated", false);
    absl::StrAppend(&out, "output of ", NodeLabel(last->node_name(), last->node_id()), " [",
                    last->node_type(), "]",
                    truncated ? " (cut to the event size limit: first items only)" : "", ":\n");
    if (output.is_discarded()) {
      absl::StrAppend(&out, last->output_json(), "\n");
      return out;
    }
    Json shown = output;
    if (output.is_object() && output.contains("main")) {
      shown = output["main"];
      if (shown.is_array() && shown.empty() && output.contains("branches")) {
        shown = output["branches"];
      }
    }
    absl::StrAppend(&out, shown.dump(2), "\n");
    return out;
  }
  absl::StrAppend(&out, "result: ", StateName(e.state()));
  const v1::ExecutionError& err = e.error();
  if (!err.node_id().empty()) {
    std::string type;
    for (const v1::NodeExecution& n : e.node_executions()) {
      if (n.node_id() == err.node_id()) type = n.node_type();
    }
    absl::StrAppend(&out, " at node ", NodeLabel(err.node_name(), err.node_id()),
                    type.empty() ? "" : absl::StrCat(" [", type, "]"));
  }
  absl::StrAppend(&out, "\nerror: ", ErrorText(err), "\n");
  if (!err.stack().empty()) absl::StrAppend(&out, err.stack(), "\n");
  return out;
}

std::string FormatExecution(const v1::Execution& e, absl::Time now) {
  std::string out;
  absl::StrAppend(&out, "execution  ", e.id(), "\n");
  absl::StrAppend(&out, "workflow   ", e.workflow_id(),
                  e.workflow_name().empty() ? "" : absl::StrCat(" (", e.workflow_name(), ")"),
                  "\n");
  absl::StrAppend(&out, "state      ", StateName(e.state()), "\n");
  absl::StrAppend(&out, "mode       ", e.mode() == v1::EXECUTION_MODE_DIRECT ? "direct" : "queue",
                  e.queue().empty() ? "" : absl::StrCat(" (queue ", e.queue(), ")"), "\n");
  absl::StrAppend(&out, "attempts   ", e.attempts(), " of ", e.max_attempts(), "\n");
  absl::StrAppend(&out, "created    ", FormatTime(e.created_at()), "\n");
  absl::StrAppend(&out, "started    ", FormatTime(e.started_at()), "\n");
  absl::StrAppend(&out, "finished   ", FormatTime(e.finished_at()), "\n");
  if (!e.worker_id().empty()) absl::StrAppend(&out, "worker     ", e.worker_id(), "\n");
  if (!e.retry_of_execution_id().empty()) {
    absl::StrAppend(&out, "retry of   ", e.retry_of_execution_id(), "\n");
  }
  if (e.has_error()) {
    absl::StrAppend(
        &out, "error      ", ErrorText(e.error()),
        e.error().node_id().empty()
            ? ""
            : absl::StrCat(" at node ", NodeLabel(e.error().node_name(), e.error().node_id())),
        "\n");
  }
  if (!e.node_executions().empty()) {
    absl::StrAppend(
        &out, absl::StrFormat("%-28s %-16s %-10s %10s\n", "NODE", "TYPE", "STATE", "DURATION"));
    for (const v1::NodeExecution& n : e.node_executions()) {
      absl::StrAppend(&out, absl::StrFormat("%-28s %-16s %-10s %7d ms%s\n",
                                            n.node_name().empty() ? n.node_id() : n.node_name(),
                                            n.node_type(), NodeStateName(n.state()),
                                            n.duration_ms(), n.reused() ? "  (reused)" : ""));
    }
  }
  (void)now;
  return out;
}

std::string FormatExecutionList(const v1::ListExecutionsResponse& r) {
  std::string out =
      absl::StrFormat("%-36s  %-24s %-10s %-23s\n", "ID", "WORKFLOW", "STATE", "CREATED");
  for (const v1::Execution& e : r.executions()) {
    absl::StrAppend(&out, absl::StrFormat("%-36s  %-24s %-10s %-23s\n", e.id(), e.workflow_id(),
                                          StateName(e.state()), FormatTime(e.created_at())));
  }
  absl::StrAppend(&out, r.executions_size(), " of ", r.total_size(), " executions");
  if (!r.next_page_token().empty()) absl::StrAppend(&out, " (more: raise --limit)");
  absl::StrAppend(&out, "\n");
  return out;
}

std::string FormatStatsTable(const v1::GetQueueStatsResponse& r) {
  std::string out =
      absl::StrFormat("%-16s %8s %8s %8s %10s %8s %10s %10s %12s\n", "QUEUE", "WAITING", "ACTIVE",
                      "DELAYED", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "OLDEST_WAIT");
  for (const v1::QueueStats& q : r.queues()) {
    const absl::Duration age =
        absl::Milliseconds(TimeUtil::DurationToMilliseconds(q.oldest_waiting_age()));
    absl::StrAppend(
        &out, absl::StrFormat("%-16s %8d %8d %8d %10d %8d %10d %10d %12s\n", q.queue(), q.waiting(),
                              q.active(), q.delayed(), q.completed(), q.failed(), q.cancelled(),
                              q.timed_out(), absl::FormatDuration(age)));
  }
  return out;
}

std::string FormatWorkerStatus(const v1::WorkerStatus& s, absl::Time now) {
  std::string state;
  switch (s.state()) {
    case v1::WORKER_STATE_RUNNING:
      state = "running";
      break;
    case v1::WORKER_STATE_DRAINING:
      state = "draining";
      break;
    case v1::WORKER_STATE_DRAINED:
      state = "drained";
      break;
    default:
      state = "unknown";
  }
  std::string out;
  absl::StrAppend(&out, "  worker     ", s.worker_id(), " on ", s.hostname(), " (version ",
                  s.version(), ")\n");
  absl::StrAppend(&out, "  state      ", state, ", slots ", s.slots_busy(), "/", s.slots_total(),
                  " busy, queues ", absl::StrJoin(s.queues(), ","), "\n");
  absl::StrAppend(&out, "  processed  ", s.processed_count(), " (failed ", s.failed_count(),
                  ", retried ", s.retried_count(), "), last claim ", Ago(s.last_claim_at(), now),
                  "\n");
  const v1::LeaseHealth& l = s.lease_health();
  absl::StrAppend(&out, "  leases     last renewal ", Ago(l.last_renewal_at(), now),
                  ", failed renewals ", l.failed_renewals(), " (", l.consecutive_failed_renewals(),
                  " in a row), lost ", l.leases_lost(), "\n");
  for (const v1::RunningExecution& r : s.running_executions()) {
    absl::StrAppend(&out, "  running    ", r.execution_id(), "  ", r.workflow_id(), "  ",
                    r.current_node_name().empty() ? "-" : r.current_node_name(), "  attempt ",
                    r.attempt(), ", started ", Ago(r.started_at(), now), "\n");
  }
  return out;
}

}  // namespace ndx::cli
