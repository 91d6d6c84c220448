// File: errors.h
//
// How node and engine errors say whether they are permanent or transient (DESIGN.md "Execution
// semantics"): by their absl::StatusCode, one rule for the whole engine, read by the queue's retry
// policy.
//
//   transient (retry with backoff): UNAVAILABLE (connection errors, HTTP 5xx, Redis/PostgreSQL
//                                   down, a lost worker), DEADLINE_EXCEEDED (timeouts),
//                                   ABORTED (a conflict worth retrying)
//   permanent (fail at once):       everything else — INVALID_ARGUMENT (validation, bad
//                                   parameters, syntax errors in code or expressions),
//                                   FAILED_PRECONDITION (HTTP 4xx, an error thrown by user code),
//                                   NOT_FOUND, RESOURCE_EXHAUSTED (payload or memory limits),
//                                   PERMISSION_DENIED, UNIMPLEMENTED, INTERNAL, ...
//   CANCELLED: the execution was cancelled; neither retried nor reported as a failure.
#pragma once

#include "absl/status/status.h"

namespace ndx::engine {

inline bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

}  // namespace ndx::engine
