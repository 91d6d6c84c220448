// File: redis_probe.h
//
// What a benchmark phase cost the Redis server, from INFO: commands by name (commandstats, which
// also counts the commands Lua scripts call), CPU time, memory, keys. Snapshot before and after a
// phase, then divide the difference by the number of jobs:
//
//   NDX_ASSIGN_OR_RETURN(ServerCounters before, ReadCounters(redis));
//   ...  // the phase, N jobs
//   NDX_ASSIGN_OR_RETURN(ServerCounters after, ReadCounters(redis));
//   JobCosts costs = CostsPerJob(before, after, N);
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "libs/common/redis/redis_client.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct ServerCounters {
  absl::flat_hash_map<std::string, int64_t> calls;  // by command ("client|setname" -> "client")
  double cpu_seconds = 0;                           // used_cpu_user + used_cpu_sys
  int64_t used_memory = 0;
  int64_t used_memory_dataset = 0;  // used_memory minus Redis's overhead (client buffers, ...)
  int64_t keys = 0;                 // DBSIZE
};

// INFO all + DBSIZE (two commands; they appear in the next snapshot's counts, which is noise).
absl::StatusOr<ServerCounters> ReadCounters(redis::RedisConnection& redis);

// Costs per job between two snapshots.
struct JobCosts {
  double script_calls = 0;     // EVALSHA + EVAL
  double client_commands = 0;  // commands sent by clients (never from a script): >= round trips
  double redis_commands = 0;   // every command executed, those called by scripts included
  double redis_cpu_us = 0;     // Redis CPU time (user + system)
};
JobCosts CostsPerJob(const ServerCounters& before, const ServerCounters& after, int64_t jobs);

// Redis's slow log (SLOWLOG GET): a ring of at most slowlog-max-len (128) entries, each keeping
// the first 32 arguments (up to 128 bytes each) of a command that ran longer than
// slowlog-log-slower-than (10 ms). It is part of used_memory (about 5 KB an entry when the
// arguments are payloads) but not of any key, and FLUSHALL keeps it: a phase that measures
// memory empties it before its baseline and reports what the phase put there (ResetSlowlog).
struct SlowlogSummary {
  int64_t entries = 0;
  int64_t longest_us = 0;
  std::string commands;     // "evalsha b5425d89 x2, ..." (by command name; scripts by SHA prefix)
  int64_t freed_bytes = 0;  // used_memory before the reset minus after it
};
// SLOWLOG GET 128, then SLOWLOG RESET; freed_bytes from ReadCounters around the reset.
absl::StatusOr<SlowlogSummary> ResetSlowlog(redis::RedisConnection& redis);

// Adds the costs to a measurement record, under the names the BullMQ peer uses.
void AddCosts(const JobCosts& costs, nlohmann::json& record);

}  // namespace ndx::bench
