#include "bench/bullmq_peer.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/child_process.h"

namespace ndx::bench {
namespace {

std::string Tail(const std::string& text, size_t n) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

absl::Status BullmqPeer::Check() const {
  struct stat st {};
  if (::stat(options_.script.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the BullMQ peer ", options_.script, " does not exist (see --peer_dir)"));
  }
  const std::string modules = DirOf(options_.script) + "/node_modules/bullmq/package.json";
  if (::stat(modules.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("the BullMQ peer's dependencies are not ",
                                                      "installed: run `npm ci` in ",
                                                      DirOf(options_.script)));
  }
  testing::ChildProcess node;
  const std::string log = absl::StrCat(options_.log_dir, "/node-version.log");
  if (absl::Status s = node.Start({options_.node, "--version"}, log); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", options_.node, ": ", s.message()));
  }
  absl::StatusOr<int> status = node.WaitFor(absl::Seconds(20));
  if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0 ||
      !absl::StartsWith(testing::ReadFile(log), "v")) {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.node, " --version failed: ", testing::ReadFile(log), " (Node 20 is needed)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<nlohmann::json>> BullmqPeer::Run(const std::string& mode,
                                                            const std::vector<std::string>& args) {
  std::vector<std::string> argv = {options_.node, options_.script, mode};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--port", absl::StrCat(options_.redis_port), "--payload-file",
                           options_.payload_file, "--flush"});
  const std::string log = absl::StrCat(options_.log_dir, "/bullmq-", ++runs_, "-", mode, ".log");
  testing::ChildProcess node;
  if (absl::Status s = node.Start(argv, log); !s.ok()) return s;
  absl::StatusOr<int> status = node.WaitFor(options_.timeout);
  if (!status.ok()) {
    // Its forked worker processes see their IPC channel close and exit with it.
    node.Signal(SIGKILL);
    node.Wait();
    return absl::DeadlineExceededError(
        absl::StrCat("BullMQ peer `", absl::StrJoin(argv, " "), "` took longer than ",
                     absl::FormatDuration(options_.timeout), "; log ", log));
  }
  const std::string output = testing::ReadFile(log);
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(
        absl::StrCat("BullMQ peer `", absl::StrJoin(argv, " "), "` failed:\n", Tail(output, 2000)));
  }
  std::vector<nlohmann::json> records;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::StartsWith(line, "{")) continue;  // progress and warnings
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) {
      return absl::InternalError(absl::StrCat("BullMQ peer printed a bad record: ", line));
    }
    records.push_back(std::move(record));
  }
  if (records.empty()) {
    return absl::InternalError(
        absl::StrCat("BullMQ peer `", mode, "` printed no measurement:\n", Tail(output, 2000)));
  }
  return records;
}

}  // namespace ndx::bench
