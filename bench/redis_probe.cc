#include "bench/redis_probe.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "libs/common/status_macros.h"

namespace ndx::bench {
namespace {

// Commands that only clients send (a script cannot call them, or neither side's scripts do): their
// count is the number of commands on the wire, an upper bound of the round trips. The same list as
// CLIENT_ONLY in peers/bullmq/bench.js.
bool IsClientOnly(absl::string_view name) {
  static const auto* const kNames = new absl::flat_hash_set<absl::string_view>{
      "evalsha",    "eval",        "evalsha_ro",   "eval_ro", "fcall",    "multi",   "exec",
      "discard",    "watch",       "unwatch",      "blpop",   "brpop",    "blmove",  "brpoplpush",
      "bzpopmin",   "bzpopmax",    "blmpop",       "bzmpop",  "ping",     "info",    "client",
      "script",     "hello",       "auth",         "select",  "quit",     "command", "subscribe",
      "psubscribe", "unsubscribe", "punsubscribe", "memory",  "flushall", "dbsize"};
  return kNames->contains(name);
}

}  // namespace

absl::StatusOr<ServerCounters> ReadCounters(redis::RedisConnection& redis) {
  NDX_ASSIGN_OR_RETURN(redis::RedisReply info, redis.Command({"INFO", "all"}));
  NDX_ASSIGN_OR_RETURN(redis::RedisReply keys, redis.Command({"DBSIZE"}));
  ServerCounters out;
  out.keys = keys.integer();
  for (absl::string_view line : absl::StrSplit(info.str(), "\r\n")) {
    // cmdstat_evalsha:calls=123,usec=456,...
    if (absl::ConsumePrefix(&line, "cmdstat_")) {
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      absl::string_view name = line.substr(0, colon);
      name = name.substr(0, name.find('|'));
      absl::string_view rest = line.substr(colon + 1);
      if (!absl::ConsumePrefix(&rest, "calls=")) continue;
      int64_t calls = 0;
      if (absl::SimpleAtoi(rest.substr(0, rest.find(',')), &calls)) {
        out.calls[std::string(name)] += calls;
      }
      continue;
    }
    std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (kv.size() != 2) continue;
    double cpu = 0;
    if ((kv[0] == "used_cpu_user" || kv[0] == "used_cpu_sys") && absl::SimpleAtod(kv[1], &cpu)) {
      out.cpu_seconds += cpu;
    } else if (kv[0] == "used_memory") {
      (void)absl::SimpleAtoi(kv[1], &out.used_memory);
    } else if (kv[0] == "used_memory_dataset") {
      (void)absl::SimpleAtoi(kv[1], &out.used_memory_dataset);
    }
  }
  return out;
}

absl::StatusOr<SlowlogSummary> ResetSlowlog(redis::RedisConnection& redis) {
  NDX_ASSIGN_OR_RETURN(redis::RedisReply log, redis.Command({"SLOWLOG", "GET", "128"}));
  SlowlogSummary out;
  // Entry: id, timestamp, duration (us), arguments, client address, client name.
  std::map<std::string, int64_t> by_command;
  for (const redis::RedisReply& entry : log.elements()) {
    const std::vector<redis::RedisReply>& f = entry.elements();
    if (f.size() < 4) continue;
    ++out.entries;
    out.longest_us = std::max(out.longest_us, f[2].integer());
    const std::vector<redis::RedisReply>& args = f[3].elements();
    std::string name = args.empty() ? "?" : absl::AsciiStrToLower(args[0].str());
    if ((name == "evalsha" || name == "evalsha_ro") && args.size() > 1) {
      absl::StrAppend(&name, " ", args[1].str().substr(0, 8));
    }
    ++by_command[name];
  }
  for (const auto& [name, count] : by_command) {
    absl::StrAppend(&out.commands, out.commands.empty() ? "" : ", ", name, " x", count);
  }
  NDX_ASSIGN_OR_RETURN(const ServerCounters before, ReadCounters(redis));
  NDX_RETURN_IF_ERROR(redis.Command({"SLOWLOG", "RESET"}).status());
  NDX_ASSIGN_OR_RETURN(const ServerCounters after, ReadCounters(redis));
  out.freed_bytes = before.used_memory - after.used_memory;
  return out;
}

JobCosts CostsPerJob(const ServerCounters& before, const ServerCounters& after, int64_t jobs) {
  JobCosts c;
  if (jobs <= 0) return c;
  int64_t scripts = 0, client = 0, all = 0;
  for (const auto& [name, calls] : after.calls) {
    auto it = before.calls.find(name);
    const int64_t d = calls - (it == before.calls.end() ? 0 : it->second);
    all += d;
    if (name == "evalsha" || name == "eval") scripts += d;
    if (IsClientOnly(name)) client += d;
  }
  const double n = static_cast<double>(jobs);
  c.script_calls = scripts / n;
  c.client_commands = client / n;
  c.redis_commands = all / n;
  c.redis_cpu_us = (after.cpu_seconds - before.cpu_seconds) * 1e6 / n;
  return c;
}

void AddCosts(const JobCosts& costs, nlohmann::json& record) {
  record["script_calls_per_job"] = costs.script_calls;
  record["client_commands_per_job"] = costs.client_commands;
  record["redis_commands_per_job"] = costs.redis_commands;
  record["redis_cpu_us_per_job"] = costs.redis_cpu_us;
}

}  // namespace ndx::bench
