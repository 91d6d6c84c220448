#include "libs/common/health_monitor.h"

#include "absl/strings/str_cat.h"
#include "libs/common/log.h"

namespace ndx::common {

HealthMonitor::HealthMonitor(std::vector<Probe> probes, absl::Duration interval,
                             std::function<void(bool)> on_change)
    : probes_(std::move(probes)), interval_(interval), on_change_(std::move(on_change)) {}

HealthMonitor::~HealthMonitor() { Stop(); }

void HealthMonitor::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  RunOnce();
  thread_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        const auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) return;
      }
      RunOnce();
    }
  });
}

void HealthMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool HealthMonitor::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

std::vector<std::string> HealthMonitor::failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

void HealthMonitor::RunOnce() {
  std::vector<std::string> failures;
  for (const Probe& probe : probes_) {
    const absl::Status s = probe.check();
    if (!s.ok()) failures.push_back(absl::StrCat(probe.name, ": ", s.ToString()));
  }
  const bool serving = failures.empty();
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    changed = !reported_ || serving != serving_;
    reported_ = true;
    serving_ = serving;
    failures_ = failures;
  }
  if (!changed) return;
  if (serving) {
    log::Info("dependencies healthy");
  } else {
    for (const std::string& f : failures) log::Warn("dependency unhealthy", {{"probe", f}});
  }
  on_change_(serving);
}

}  // namespace ndx::common
