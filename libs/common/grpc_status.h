// File: grpc_status.h
//
// absl::Status crosses the wire unchanged (STYLE.md rule 6): both enums are google.rpc.Code, so
// the conversion keeps the code and the message. The gateway maps codes to HTTP statuses with
// HttpStatusForCode, one table for every route.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace ndx::common {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE -> 400; UNAUTHENTICATED 401;
// PERMISSION_DENIED 403; NOT_FOUND 404; ALREADY_EXISTS, ABORTED 409; RESOURCE_EXHAUSTED 429;
// CANCELLED 499; UNIMPLEMENTED 501; UNAVAILABLE 503; DEADLINE_EXCEEDED 504; OK 200; else 500.
int HttpStatusForCode(absl::StatusCode code);

}  // namespace ndx::common
