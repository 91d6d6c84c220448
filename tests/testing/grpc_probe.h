// File: grpc_probe.h
//
// Clients for the standard gRPC services every ndx process serves, for tests: grpc.health.v1
// Health.Check and grpc.reflection.v1alpha ServerReflection (list services). They use gRPC's
// generic stub and encode the few protobuf fields by hand, so that the tests link no second copy
// of those protos next to the server-side ones (which would clash in the descriptor pool).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndx::testing {

// grpc.health.v1.HealthCheckResponse.ServingStatus
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// Health.Check(service) on `target` ("127.0.0.1:port"). The call's status when it fails (NOT_FOUND
// for a service the server does not know, UNAVAILABLE when nothing listens).
absl::StatusOr<ServingStatus> CheckHealth(const std::string& target, const std::string& service,
                                          absl::Duration timeout = absl::Seconds(2));

// The fully qualified names of the services `target` serves, from server reflection.
absl::StatusOr<std::vector<std::string>> ListServices(const std::string& target,
                                                      absl::Duration timeout = absl::Seconds(2));

// A minimal HTTP/1.1 GET over loopback ("Connection: close").
struct HttpResult {
  int status = 0;
  std::string body;
  std::string headers;  // raw header block
};
absl::StatusOr<HttpResult> HttpGet(int port, const std::string& path,
                                   absl::Duration timeout = absl::Seconds(5));

}  // namespace ndx::testing
