#include "libs/common/grpc_status.h"

#include "gtest/gtest.h"

namespace ndx::common {
namespace {

struct HttpRow {
  absl::StatusCode code;
  int http;
};

// The one table the gateway uses (STYLE.md rule 6).
constexpr HttpRow kHttpTable[] = {
    {absl::StatusCode::kOk, 200},
    {absl::StatusCode::kInvalidArgument, 400},
    {absl::StatusCode::kFailedPrecondition, 400},
    {absl::StatusCode::kOutOfRange, 400},
    {absl::StatusCode::kUnauthenticated, 401},
    {absl::StatusCode::kPermissionDenied, 403},
    {absl::StatusCode::kNotFound, 404},
    {absl::StatusCode::kAlreadyExists, 409},
    {absl::StatusCode::kAborted, 409},
    {absl::StatusCode::kResourceExhausted, 429},
    {absl::StatusCode::kCancelled, 499},
    {absl::StatusCode::kUnimplemented, 501},
    {absl::StatusCode::kUnavailable, 503},
    {absl::StatusCode::kDeadlineExceeded, 504},
    {absl::StatusCode::kInternal, 500},
    {absl::StatusCode::kUnknown, 500},
    {absl::StatusCode::kDataLoss, 500},
};

TEST(HttpStatusForCode, MapsEveryCode) {
  for (const HttpRow& row : kHttpTable) {
    EXPECT_EQ(HttpStatusForCode(row.code), row.http) << absl::StatusCodeToString(row.code);
  }
}

TEST(GrpcStatus, RoundTripKeepsCodeAndMessage) {
  for (int c = 0; c <= 16; ++c) {
    const absl::Status s(static_cast<absl::StatusCode>(c), c == 0 ? "" : "node \"HTTP\" failed");
    const grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
}

}  // namespace
}  // namespace ndx::common
