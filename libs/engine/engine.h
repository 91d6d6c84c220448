// File: engine.h
//
// Engine: runs a parsed Workflow from one trigger, given the runs already completed (resume), and
// reports every node run through an ExecutionObserver, which the worker implements to checkpoint
// outputs and publish events (DESIGN.md "Execution semantics", "Events").
//
//   class Worker final : public ExecutionObserver { ... };       // checkpoints + events
//   RunRequest req;
//   req.workflow = &workflow;                                     // parsed once, cached
//   req.execution = {.execution_id = id, .workflow_id = wf_id};
//   req.trigger_data = data;
//   req.checkpoints = LoadCheckpoints(id);                        // {} on the first attempt
//   req.cancel = &token; req.deadline = ExecutionDeadline(workflow, started_at, job_timeout);
//   req.js = js_sandbox.get(); req.http = &http_client; req.clock = &clock;
//   RunResult r = Engine().Run(req, worker);
//
// Order. A run starts at the trigger and visits only what the trigger reaches. Nodes run one at
// a time in a stable topological order: a depth-first walk from the trigger that follows each
// node's connections in connection array order, so a node's first branch runs (to its end or to
// a join) before its second, and a join runs after every input it can receive (diamond
// A->B, A->C, B->D, C->D runs A, B, C, D; A->B, A->D, B->D runs A, B, D). Nodes outside the
// reachable set (other triggers, orphans) are ignored, also as join inputs.
//
// Pruning and skips. A connection is active when its source completed with at least one item on
// the connection's output (`branches[sourceOutput]`, or `main` for single-output nodes). A node
// runs once, when all its reachable inputs are decided, if at least one input connection is
// active; its input then has one sub-array per connection (empty for pruned ones) — Merge sees
// them separately, every other node gets them concatenated. A node with no active input is
// `skipped` (OnNodeSkipped) and prunes its own outputs. Identical duplicate connections were
// merged at parse time, so no node runs twice for one trigger.
//
// Disabled nodes pass their input items through unchanged (on their FallbackOutput, e.g. `true`
// for IF, `done` for Loop) and are reported as completed with metadata.disabled = true.
//
// Loops. A Loop node's `loop` output feeds its body (what the `loop` connections reach); edges
// from the body back into the Loop are allowed and ignored. The engine runs the Loop node once
// per batch (run keys "<loop>#0", "#1", ...; each a started/completed pair with NodeRun
// iteration), runs the whole body for each batch, then runs it once more to emit `done`
// ({completed: true, totalIterations}), after which the nodes after `done` run. Body runs get
// iteration-qualified run keys. A failing body node fails the execution once (the body node's
// OnNodeFailed, no second failure for the Loop node).
//
// Run keys (the unit of checkpointing): "<nodeId>" at top level; inside Loop bodies the
// iteration path is appended: "<nodeId>@<loopId>:<iteration>" and for nested loops
// "<nodeId>@<outer>:<i>/<inner>:<j>"; Loop node runs append "#<k>" ("<loopId>#3",
// "<inner>@<outer>:1#0"). Iterations count from 0.
//
// Checkpoints. Every value the engine hands to the observer as a checkpoint is a JSON object the
// worker stores verbatim under the run key and passes back in RunRequest::checkpoints:
//   {"v": 1, "status": "completed", "output": <standardized output>, "state": <node state>?}
//   {"v": 1, "status": "skipped", "reason": "..."}
//   {"v": 1, "status": "waiting", "resumeAt": "<ISO>", "resumeAtMs": <unix ms>, "state": ...}
// All engine state lives in checkpoints (e.g. a Loop run's cursor in "state"), nothing in memory.
// Resume: the engine replays the same deterministic walk; a run whose checkpoint is "completed"
// is not run again and not reported again (its output is reused), a "skipped" one is not
// reported again, a "waiting" one runs its node again with the saved state (the Wait node then
// completes once its time has come). Storing skip checkpoints is optional (without them a resumed
// run reports the skip again). The final result equals that of an uninterrupted run.
//
// Errors. A failing node is retried if settings.retryOnFail and the error is transient
// (errors.h), up to maxRetries times, retryDelay apart (OnNodeRetrying before each). Then, with
// settings.continueOnFail, its error becomes an output item and the node completes; otherwise
// OnNodeFailed and the run ends kFailed with that error (RunResult::transient tells the queue
// whether to retry the job). Cancellation (the token) and the deadline are checked between nodes
// and passed into HTTP, JavaScript and waits; they end the run kCancelled / kTimedOut and are
// never rescued by continueOnFail.
//
// Thread-safety: Engine is immutable; Run() may be called concurrently for different
// executions. One Run() uses its JsSandbox only on the calling thread.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/engine/cancellation.h"
#include "libs/engine/js/js_sandbox.h"
#include "libs/engine/node_type.h"
#include "libs/engine/workflow.h"

namespace ndx::engine {

class HttpClient;

// Run key -> checkpoint value, as reported to the observer.
using CheckpointMap = absl::flat_hash_map<std::string, Json>;

// One run of one node: what node-* events are about.
struct NodeRun {
  const Node* node = nullptr;  // id, name, type for events
  std::string key;             // the run key
  int iteration = -1;          // Loop node runs: the batch index (NodeDrop's `iteration`); else -1
  std::string loop_path;       // "" at top level, else e.g. "loop-1:3" or "outer:0/inner:2"
};

// Implemented by the worker. Calls come from the thread that called Engine::Run, one at a time,
// in execution order.
class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;

  // The node run starts (event `node-started`). Not called for replayed (checkpointed) runs.
  virtual void OnNodeStarted(const NodeRun& run) = 0;

  // The run completed (event `node-completed`): `checkpoint` is the value to store under
  // run.key before anything else runs; `output` is the standardized output ({main, branches?,
  // metadata}, also inside the checkpoint); `active_connections` is the array of outgoing
  // connections that carry items, each {id, sourceNodeId, targetNodeId, sourceOutput}. A non-OK
  // return (e.g. the worker lost its lease) stops the run at once: nothing more is reported and
  // Run returns kStopped with that status.
  virtual absl::Status OnNodeCompleted(const NodeRun& run, const Json& checkpoint,
                                       const Json& output, absl::Duration duration,
                                       const Json& active_connections) = 0;

  // The node will not run because every input was pruned (event `node-skipped`). Storing
  // `checkpoint` is optional. A non-OK return stops the run like OnNodeCompleted.
  virtual absl::Status OnNodeSkipped(const NodeRun& run, absl::string_view reason,
                                     const Json& checkpoint) = 0;

  // The run failed for good (event `node-failed`; payload from NodeErrorJson()). The run then
  // ends kFailed. Not called for cancellation or when continueOnFail rescued the node.
  virtual void OnNodeFailed(const NodeRun& run, const absl::Status& error,
                            absl::Duration duration) = 0;

  // Attempt `attempt` (2, 3, ...) of the run starts after `delay` because of `error`
  // (settings.retryOnFail; event `retrying`).
  virtual void OnNodeRetrying(const NodeRun& run, int attempt, absl::Duration delay,
                              const absl::Status& error) = 0;

  // The run waits until `resume_at` (a Wait node past the inline threshold): store `checkpoint`
  // under run.key; Run then returns kSuspended and the worker re-runs the execution at
  // `resume_at` with its checkpoints. A non-OK return stops the run like OnNodeCompleted.
  virtual absl::Status OnNodeSuspended(const NodeRun& run, const Json& checkpoint,
                                       absl::Time resume_at) = 0;
};

struct EngineOptions {
  // Waits up to this long sleep inline on the cancellation token; longer ones suspend.
  absl::Duration max_inline_wait = absl::Seconds(5);
  // http-request response size cap (RESOURCE_EXHAUSTED beyond it).
  size_t max_http_response_bytes = 16 << 20;
  // Defaults for JavaScript (Code nodes may lower the timeout with their `timeout` parameter).
  JsLimits js_limits;
  // A Loop node stops with an error after this many batches.
  int max_loop_iterations = 100000;
};

struct RunRequest {
  const Workflow* workflow = nullptr;         // REQUIRED; must outlive Run()
  std::string trigger_node_id;                // "" = the workflow's first trigger node
  Json trigger_data;                          // the trigger node's input item json (null: none)
  ExecutionInfo execution;                    // $execution, Idempotency-Key, JS globals
  Json vars = Json::object();                 // $vars
  CheckpointMap checkpoints;                  // completed runs (resume); empty on a first attempt
  const CancellationToken* cancel = nullptr;  // null: never cancelled
  absl::Time deadline = absl::InfiniteFuture();  // job deadline / executionTimeout
  JsSandbox* js = nullptr;           // null: Code nodes and JS expressions fail (permanent)
  const HttpClient* http = nullptr;  // null: http-request fails (permanent)
  common::Clock* clock = nullptr;    // null: common::RealClock()
};

enum class RunOutcome {
  kCompleted,  // every reachable node completed or was skipped
  kFailed,     // a node failed (error, failed_node_id); `transient` says whether to retry
  kCancelled,  // the token was cancelled (error = its reason)
  kTimedOut,   // the deadline passed (error: DEADLINE_EXCEEDED)
  kSuspended,  // a Wait node waits until resume_at; re-run with the checkpoints then
  kStopped,    // the observer returned an error (error = that status); nothing more reported
};

absl::string_view RunOutcomeName(RunOutcome outcome);  // "completed", "failed", ...

enum class RunStatus { kCompleted, kSkipped };

// One node run in execution order (replayed runs included).
struct RunRecord {
  std::string key;
  std::string node_id;
  RunStatus status = RunStatus::kCompleted;
  Json output;  // standardized output; null when skipped
};

struct RunResult {
  RunOutcome outcome = RunOutcome::kCompleted;
  absl::Status error;          // OK for kCompleted and kSuspended
  bool transient = false;      // IsTransient(error) for kFailed
  std::string failed_node_id;  // kFailed (and kCancelled/kTimedOut when a node was running)
  std::string failed_run_key;
  absl::Time resume_at = absl::InfinitePast();  // kSuspended
  std::vector<RunRecord> runs;
  Json outputs = Json::object();  // node id -> standardized output of its latest completed run
};

// {message, code ("UNAVAILABLE", ...), nodeId, nodeName, nodeType, transient}: the `error` of
// node-failed and failed events.
Json NodeErrorJson(const Node& node, const absl::Status& error);

// The deadline a worker should pass: started_at + the smaller of the job timeout and the
// workflow's settings.executionTimeout.
absl::Time ExecutionDeadline(const Workflow& workflow, absl::Time started_at,
                             absl::Duration job_timeout);

class Engine final {
 public:
  explicit Engine(EngineOptions options = {}) : options_(std::move(options)) {}

  // Runs the request to its end (see the file comment). Never throws; all problems are in the
  // result: INVALID_ARGUMENT for a bad request (unknown or disabled trigger node, no trigger),
  // FAILED_PRECONDITION for a malformed checkpoint.
  RunResult Run(const RunRequest& request, ExecutionObserver& observer) const;

 private:
  EngineOptions options_;
};

}  // namespace ndx::engine
