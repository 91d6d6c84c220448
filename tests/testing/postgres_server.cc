#include "tests/testing/postgres_server.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ndx::testing {
namespace {

// The newest /usr/lib/postgresql/<N>/bin, or "" when PostgreSQL is not installed.
std::string PgBinDir() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "postgres")) {
      dirs.push_back(entry.path().filename().string());
    }
  }
  if (dirs.empty()) return "";
  std::sort(dirs.begin(), dirs.end(),
            [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); });
  return absl::StrCat("/usr/lib/postgresql/", dirs.back(), "/bin");
}

// initdb and postgres refuse to run as root: as root, run them as the `postgres` user (which the
// postgresql package creates). setpriv execs in place, so the child's pid is the server's; it keeps
// the parent-death signal ChildProcess set, which a change of user would otherwise clear.
std::vector<std::string> AsPostgres(std::vector<std::string> argv) {
  if (::geteuid() != 0) return argv;
  std::vector<std::string> wrapped = {"setpriv", "--reuid=postgres", "--regid=postgres",
                                      "--init-groups", "--pdeathsig=keep"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

// Runs a short command to completion; returns its exit status or an error with its output.
absl::Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log,
                             absl::Duration timeout) {
  ChildProcess p;
  if (absl::Status s = p.Start(argv, log); !s.ok()) return s;
  absl::StatusOr<int> status = p.WaitFor(timeout);
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " failed; output:\n", ReadFile(log)));
  }
  return absl::OkStatus();
}

}  // namespace

PostgresServer::~PostgresServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status PostgresServer::Start() {
  const std::string bin = PgBinDir();
  if (bin.empty()) {
    return absl::FailedPreconditionError("PostgreSQL is not installed (/usr/lib/postgresql/*)");
  }
  dir_ = MakeTempDir("ndx-pg");
  if (dir_.empty()) return absl::InternalError("cannot create a temporary directory");
  const std::string data = absl::StrCat(dir_, "/data");
  if (::geteuid() == 0) {
    // The cluster directory must belong to `postgres`; its parent is 0755 (MakeTempDir).
    ::mkdir(data.c_str(), 0700);
    if (absl::Status s = RunToCompletion({"chown", "-R", "postgres:postgres", dir_},
                                         absl::StrCat(dir_, "/chown.log"), absl::Seconds(10));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = RunToCompletion(
          AsPostgres({absl::StrCat(bin, "/initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}),
          absl::StrCat(dir_, "/initdb.log"), absl::Seconds(60));
      !s.ok()) {
    return s;
  }
  port_ = FreePort();
  return Launch();
}

absl::Status PostgresServer::Launch() {
  const std::string bin = PgBinDir();
  const std::string log = absl::StrCat(dir_, "/postgres.log");
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (absl::Status s = process_.Start(
            AsPostgres({absl::StrCat(bin, "/postgres"), "-D", absl::StrCat(dir_, "/data"), "-p",
                        std::to_string(port_), "-k", dir_, "-c", "listen_addresses=127.0.0.1", "-c",
                        "fsync=off", "-c", "synchronous_commit=on", "-c", "full_page_writes=off",
                        "-c", "max_connections=200"}),
            log);
        !s.ok()) {
      return s;
    }
    if (WaitReady().ok()) return absl::OkStatus();
    process_.Signal(SIGKILL);
    process_.Wait();
    absl::SleepFor(absl::Milliseconds(200));
  }
  return absl::InternalError(
      absl::StrCat("postgres did not start on port ", port_, "; log:\n", ReadFile(log)));
}

absl::Status PostgresServer::WaitReady() {
  const std::string bin = PgBinDir();
  const std::string log = absl::StrCat(dir_, "/pg_isready.log");
  const bool ready = WaitUntil(
      [&] {
        if (!process_.Running()) return true;  // died: stop waiting
        return RunToCompletion({absl::StrCat(bin, "/pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                                std::to_string(port_)},
                               log, absl::Seconds(5))
            .ok();
      },
      absl::Seconds(20), absl::Milliseconds(25));
  if (ready && process_.Running()) return absl::OkStatus();
  return absl::InternalError("postgres is not ready");
}

absl::Status PostgresServer::Restart() {
  if (port_ == 0) return absl::FailedPreconditionError("PostgresServer was never started");
  return Launch();
}

void PostgresServer::Kill() {
  process_.Signal(SIGKILL);
  process_.Wait();
  // The postmaster's backends notice its death and exit by themselves; a restart on the same
  // data directory waits for them through postmaster.pid (Launch retries).
}

void PostgresServer::Stop() {
  if (!process_.Running()) return;
  process_.Signal(SIGINT);  // fast shutdown
  if (!process_.WaitFor(absl::Seconds(20)).ok()) Kill();
}

absl::Status PostgresServer::CreateDatabase(const std::string& name) {
  return RunToCompletion(
      {"psql", "-v", "ON_ERROR_STOP=1", "-q", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U",
       "postgres", "-d", "postgres", "-c", absl::StrCat("CREATE DATABASE \"", name, "\"")},
      absl::StrCat(dir_, "/psql.log"), absl::Seconds(30));
}

std::string PostgresServer::url(const std::string& database) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", database);
}

}  // namespace ndx::testing
