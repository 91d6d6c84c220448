// File: chaos_scenario.h
//
// The chaos scenario (issue #10): real processes — two ndx-queue, three ndx-worker, ndx-gateway,
// redis-server with AOF (fsync always), PostgreSQL — under a steady load of executions whose HTTP
// nodes call a counting loopback sink (tests/testing/http_sink.h), while faults are injected in a
// fixed rotation: SIGKILL a worker, SIGKILL + restart Redis, stop PostgreSQL for a while,
// SIGKILL + restart an ndx-queue, SIGKILL + restart the gateway. Executions are started over gRPC
// (alternating between the two ndx-queue, retried with the same request_id) and by Socket.IO
// clients (npm socket.io-client, tests/chaos/sio_chaos_clients.js) through the gateway; those
// clients follow their executions, reconnect when the gateway goes away and resume with afterSeq.
//
// Checked, per accepted execution (an execution is accepted when an ExecuteWorkflow call or a
// start-workflow-execution ack returned its id):
//   - it reaches exactly one terminal state in Redis (the job record, and exactly one terminal
//     event, the last of its log) and in PostgreSQL (executions.status, one node_executions row per
//     node) — else it is lost (no trace), stuck (never terminal) or duplicated;
//   - no checkpointed node ran twice: the event log holds one node-completed per node, and the sink
//     received no call for a node after that node's node-completed event (a call repeated while
//     the node was in flight, i.e. before its checkpoint, is counted apart: the Idempotency-Key is
//     what makes it safe);
//   - every Socket.IO client received its executions' logs whole: seq 1..N with N the length of the
//     log in Redis, no gap;
//   - no key outlives its TTL: each execution's keys carry an expiry of at most
//     EXECUTION_COMPLETION_TTL once it ended, and are gone once that has passed; no key of the
//     database lacks an expiry except the queue's own indexes, which end empty; the PostgreSQL
//     outbox ends empty.
// The Redis side of an execution is checked shortly after it ends (its keys may expire before the
// run is over), the PostgreSQL side at the end.
//
//   ndx::chaos::ChaosOptions o;   // binaries, durations, rates
//   absl::StatusOr<ndx::chaos::ChaosReport> r = ndx::chaos::RunChaos(o);
//   std::printf("%s", r->Summary().c_str());
//   EXPECT_TRUE(r->Clean());
//
// Used by tests/chaos/chaos_test.cc (a bounded run in ./dev test) and `ndx-bench chaos` (longer).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndx::chaos {

struct ChaosOptions {
  std::string queue_binary;    // ndx-queue
  std::string worker_binary;   // ndx-worker
  std::string gateway_binary;  // ndx-gateway
  std::string node = "node";   // Node.js, for the Socket.IO clients
  std::string sio_script;      // tests/chaos/sio_chaos_clients.js
  std::string node_path;       // NODE_PATH with socket.io-client (tests/e2e/node_modules)
  std::string log_dir;         // every process's log, kept for post-mortems

  // Load: executions started during `load_duration`, then the run waits for them to end.
  absl::Duration load_duration = absl::Seconds(35);
  double grpc_rate = 8;  // executions/s started over gRPC
  int sio_clients = 3;   // Socket.IO clients, each starting and following executions
  absl::Duration sio_interval = absl::Seconds(1);  // per client, between starts
  int http_nodes = 3;  // http-request nodes per workflow (after the trigger)
  // Long enough that a killed worker usually dies with HTTP calls in flight.
  absl::Duration sink_delay = absl::Milliseconds(150);
  int workers = 3;
  int worker_slots = 4;

  // Faults: one every `fault_interval`, in the rotation described above, from `first_fault` on,
  // until the load ends (at least one full rotation is made, extending the load if needed).
  absl::Duration first_fault = absl::Seconds(2);
  absl::Duration fault_interval = absl::Seconds(2);
  absl::Duration pg_outage = absl::Seconds(20);
  uint32_t seed = 1;

  // Redis TTLs given to the services (seconds).
  int completion_ttl_s = 20;
  int state_ttl_s = 3600;
  // After the load: how long executions may take to end, and PostgreSQL to converge.
  absl::Duration drain_timeout = absl::Seconds(60);

  // Progress lines on stderr.
  bool verbose = true;
};

struct ChaosReport {
  absl::Duration wall;       // the whole run, processes' start-up included
  absl::Duration pg_outage;  // how long each PostgreSQL stop lasted
  int64_t accepted = 0, accepted_grpc = 0, accepted_sio = 0;
  int64_t refused = 0;                // starts that never got an id (retried until they gave up)
  std::map<std::string, int> faults;  // by kind
  int64_t completed = 0, failed = 0;  // terminal states in Redis (failed: any other terminal)
  // The verdicts.
  int64_t lost = 0;                    // accepted, but no trace in Redis nor PostgreSQL
  int64_t stuck = 0;                   // not terminal in Redis or PostgreSQL by the deadline
  int64_t duplicated_terminal = 0;     // more than one terminal event, or a late event after it
  int64_t duplicated_node_runs = 0;    // a node completed twice in one execution's log
  int64_t calls_after_checkpoint = 0;  // sink calls for a node after its checkpoint
  int64_t repeated_in_flight = 0;      // sink calls repeated before the checkpoint (allowed)
  int64_t sink_calls = 0;
  int64_t logs_checked = 0;                        // event logs read from Redis
  int64_t client_logs = 0, client_logs_whole = 0;  // Socket.IO: executions followed / seen whole
  int64_t client_reconnects = 0, client_redelivered = 0;
  int64_t pg_mismatch = 0;  // PostgreSQL row differs from Redis (status, node rows)
  int64_t ttl_checked = 0, ttl_violations = 0;  // keys checked for expiry / keys that outlived it
  int64_t stray_keys = 0;                       // keys without expiry that are no queue index
  std::vector<std::string> problems;            // one line each, at most a few hundred kept

  int64_t duplicated() const {
    return duplicated_terminal + duplicated_node_runs + calls_after_checkpoint;
  }
  // Nothing lost, duplicated or stuck, every client view whole, every key within its TTL.
  bool Clean() const;
  // The printable summary (several lines, the verdict line first).
  std::string Summary() const;
};

// Runs the scenario. Errors: a process or server that cannot be started, a missing
// socket.io-client; everything found wrong with the executions is in the report.
absl::StatusOr<ChaosReport> RunChaos(const ChaosOptions& options);

}  // namespace ndx::chaos
