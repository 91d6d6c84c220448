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
//                                   NOT_FOUND, RESOURCE_EXHAUSTED (payload or memory limits, a
//                                   script's own time limit: PermanentIfOwnTimeLimit),
//                                   PERMISSION_DENIED, UNIMPLEMENTED, INTERNAL, ...
//   CANCELLED: the execution was cancelled; neither retried nor reported as a failure.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

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

// JavaScript stopped at a time limit (JsSandbox answers DEADLINE_EXCEEDED) is transient only when
// the node's or the execution's deadline cut it short (`limit` == `time_left`): that is a timeout
// like any other. When the script's own limit (the Code node's `timeout` parameter, the expression
// limit) was the shorter one, the same code on the same input would stop again on every retry (an
// endless loop, a catastrophic regex), so it is permanent: RESOURCE_EXHAUSTED, like the memory cap.
inline absl::StatusCode PermanentIfOwnTimeLimit(absl::StatusCode code, absl::Duration limit,
                                                absl::Duration time_left) {
  if (code == absl::StatusCode::kDeadlineExceeded && limit < time_left) {
    return absl::StatusCode::kResourceExhausted;
  }
  return code;
}

}  // namespace ndx::engine
