// File: health_monitor.h
//
// HealthMonitor: runs a process's dependency probes (Redis PING, PostgreSQL SELECT 1, ...) on its
// own thread every `interval`, and reports the combined result (serving = every probe OK) to a
// callback whenever it changes, e.g. to set the gRPC health status. A probe that starts failing is
// logged once with its error; recovery is logged once too.
//
//   HealthMonitor monitor({{"redis", [&] { return redis.Ping(); }}}, absl::Seconds(1),
//                         [&](bool serving) { server.SetServing(serving); });
//   monitor.Start();
//   ...
//   monitor.Stop();
//
// Thread-safe. Probes run on the monitor's thread only, one after another.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ndx::common {

class HealthMonitor {
 public:
  struct Probe {
    std::string name;
    std::function<absl::Status()> check;
  };

  HealthMonitor(std::vector<Probe> probes, absl::Duration interval,
                std::function<void(bool serving)> on_change);
  ~HealthMonitor();

  // Runs the probes once at once (so the first status is known when Start returns), then keeps
  // running them on a thread.
  void Start();
  // Stops the thread. Idempotent.
  void Stop();

  // The last combined result, and the error of each failing probe ("redis: UNAVAILABLE: ...").
  bool serving() const;
  std::vector<std::string> failures() const;

 private:
  void RunOnce();

  const std::vector<Probe> probes_;
  const absl::Duration interval_;
  const std::function<void(bool)> on_change_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool reported_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ndx::common
