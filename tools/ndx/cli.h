// File: cli.h
//
// The `ndx` command line client: everything but main(). It talks gRPC to ndx-queue (QueueService,
// EventStream) and to ndx-worker (WorkerService), with a deadline on every call.
//
//   ndx run FILE [--trigger NODE] [--data JSON] [--follow] [--queue Q] [--direct]
//   ndx get ID [--json]          ndx list [--workflow ID] [--state S] [--limit N] [--json]
//   ndx cancel ID [--reason R]   ndx retry ID [--follow]
//   ndx stats [--queue Q] [--json]
//   ndx workers --worker HOST:PORT [--worker ...] [--json]
//   ndx health [--service NAME]  (exit 0 SERVING, 1 NOT_SERVING: for container healthchecks)
//   global: --server HOST:PORT (or NDX_SERVER; default 127.0.0.1:50051), --rpc-timeout DURATION
//
// Exit codes: 0 success (for `run --follow` and `retry --follow`: the execution COMPLETED);
// 1 the followed execution ended FAILED, CANCELLED or TIMED_OUT; 2 usage errors, unreadable
// input, unreachable servers and refused requests (messages on stderr say what to do).
//
// The formatting helpers are public so that tests can check them without a server.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ndx/v1/event_stream.pb.h"
#include "ndx/v1/queue_service.pb.h"
#include "ndx/v1/worker_service.pb.h"

namespace ndx::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitExecutionFailed = 1;
inline constexpr int kExitUsage = 2;

inline constexpr char kDefaultServer[] = "127.0.0.1:50051";

// What the process environment contributes.
struct CliEnv {
  std::string server;   // NDX_SERVER; "" = kDefaultServer
  std::string workers;  // NDX_WORKERS: comma-separated HOST:PORT list for `ndx workers`
};

// Runs one command. `args` excludes the program name. Progress and results go to `out`, errors
// and hints to `err`. Returns the exit code.
int RunCli(const std::vector<std::string>& args, const CliEnv& env, std::ostream& out,
           std::ostream& err);

// "waiting", "active", "completed", "timed out", ...
std::string StateName(v1::ExecutionState state);

// One progress line for an event of a followed execution, without the newline; "" for events
// that print nothing (node-started). Node lines carry the node's name, type, status and
// duration: "  completed  Double (set)  2 ms".
std::string FormatEventLine(const v1::ExecutionEvent& event);

// Adds to `execution` one NodeExecution per node-completed, node-failed and node-skipped event
// (name, type, state, duration, output from data.outputData — marked "truncated": true when the
// event carried a cut output), unless it already has node_executions. Lets `ndx` show node runs
// and the final output from the event log when the server's GetExecution does not report them.
void FillNodeRunsFromEvents(const std::vector<v1::ExecutionEvent>& events,
                            v1::Execution* execution);

// The result of a finished execution: the last completed node's output items (pretty JSON), or
// the error with the node that failed.
std::string FormatResult(const v1::Execution& execution);

// `ndx get`: a summary and one line per node run.
std::string FormatExecution(const v1::Execution& execution, absl::Time now);

// `ndx list`: one line per execution.
std::string FormatExecutionList(const v1::ListExecutionsResponse& response);

// `ndx stats`: one row per queue.
std::string FormatStatsTable(const v1::GetQueueStatsResponse& response);

// `ndx workers`: one block per worker.
std::string FormatWorkerStatus(const v1::WorkerStatus& status, absl::Time now);

}  // namespace ndx::cli
