// File: engine_testing.h (test-only)
//
// RecordingObserver: an ExecutionObserver for tests. It records every call as a line
// ("started node-1", "completed node-1", "skipped node-3", "failed node-2 UNAVAILABLE",
// "retrying node-2 2", "suspended node-4"), keeps the checkpoints it was given (as a worker
// would store them), and can refuse the N-th checkpoint (returning ABORTED, like a worker that
// lost its lease) to simulate a crash right after a node ran.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/engine/engine.h"

namespace ndx::engine::testing {

class RecordingObserver : public ExecutionObserver {
 public:
  // Refuse the checkpoint with this 0-based index (completed, skipped or suspended); -1: never.
  explicit RecordingObserver(int fail_at_checkpoint = -1) : fail_at_(fail_at_checkpoint) {}

  void OnNodeStarted(const NodeRun& run) override {
    events.push_back(absl::StrCat("started ", run.key));
    started.push_back(run.key);
  }
  absl::Status OnNodeCompleted(const NodeRun& run, const Json& checkpoint, const Json& output,
                               absl::Duration, const Json& active) override {
    events.push_back(absl::StrCat("completed ", run.key));
    active_connections[run.key] = active;
    return Store(run.key, checkpoint);
  }
  absl::Status OnNodeSkipped(const NodeRun& run, absl::string_view reason,
                             const Json& checkpoint) override {
    events.push_back(absl::StrCat("skipped ", run.key));
    return Store(run.key, checkpoint);
  }
  void OnNodeFailed(const NodeRun& run, const absl::Status& error, absl::Duration) override {
    events.push_back(absl::StrCat("failed ", run.key, " ", absl::StatusCodeToString(error.code())));
    failures.push_back(NodeErrorJson(*run.node, error));
  }
  void OnNodeRetrying(const NodeRun& run, int attempt, absl::Duration,
                      const absl::Status&) override {
    events.push_back(absl::StrCat("retrying ", run.key, " ", attempt));
  }
  absl::Status OnNodeSuspended(const NodeRun& run, const Json& checkpoint, absl::Time) override {
    events.push_back(absl::StrCat("suspended ", run.key));
    return Store(run.key, checkpoint);
  }

  std::vector<std::string> events;
  std::vector<std::string> started;
  std::vector<Json> failures;
  CheckpointMap checkpoints;
  std::vector<std::string> checkpoint_order;
  std::map<std::string, Json> active_connections;  // by run key

 private:
  absl::Status Store(const std::string& key, const Json& checkpoint) {
    if (count_++ == fail_at_) return absl::AbortedError("lease lost (test)");
    checkpoints[key] = checkpoint;
    checkpoint_order.push_back(key);
    return absl::OkStatus();
  }

  int fail_at_;
  int count_ = 0;
};

}  // namespace ndx::engine::testing
