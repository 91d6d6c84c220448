// File: bullmq_peer.h
//
// BullmqPeer: runs the BullMQ side of the benchmark, peers/bullmq/bench.js, with Node against the
// benchmark's redis-server, and returns its measurements (one JSON record per line of its output).
//
//   BullmqPeer peer({.script = dir + "/bench.js", .redis_port = port, .payload_file = f,
//                    .log_dir = tmp});
//   NDX_RETURN_IF_ERROR(peer.Check());
//   NDX_ASSIGN_OR_RETURN(auto records, peer.Run("process", {"--n", "100000"}));
//
// Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

class BullmqPeer {
 public:
  struct Options {
    std::string node = "node";  // the Node 20 binary (looked up on PATH)
    std::string script;         // .../peers/bullmq/bench.js; its node_modules must be installed
    int redis_port = 0;
    std::string payload_file;  // the job's JSON
    std::string log_dir;       // one log per run (stdout + stderr), kept for reading
    absl::Duration timeout = absl::Minutes(4);  // per Run()
  };

  explicit BullmqPeer(Options options) : options_(std::move(options)) {}

  // FAILED_PRECONDITION naming the fix when Node or the script's dependencies are missing.
  absl::Status Check() const;

  // Runs `node bench.js <mode> <args...> --port P --payload-file F --flush` and returns the JSON
  // records it printed. INTERNAL (with the end of its log) when it fails; DEADLINE_EXCEEDED (it is
  // killed) after `timeout`.
  absl::StatusOr<std::vector<nlohmann::json>> Run(const std::string& mode,
                                                  const std::vector<std::string>& args);

 private:
  const Options options_;
  int runs_ = 0;
};

}  // namespace ndx::bench
