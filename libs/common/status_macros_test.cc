#include "libs/common/status_macros.h"

#include <memory>

#include "gtest/gtest.h"

namespace ndx::common {
namespace {

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool ok) {
  if (!ok) return absl::NotFoundError("no int");
  return std::make_unique<int>(7);
}

absl::Status UseInt(bool ok, int* out) {
  NDX_ASSIGN_OR_RETURN(std::unique_ptr<int> v, MakeInt(ok));  // move-only value
  *out = *v;
  return absl::OkStatus();
}

absl::Status Chain(absl::Status first, bool* reached_end) {
  NDX_RETURN_IF_ERROR(first);
  *reached_end = true;
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnMovesValueOrPropagates) {
  int out = 0;
  EXPECT_TRUE(UseInt(true, &out).ok());
  EXPECT_EQ(out, 7);
  EXPECT_EQ(UseInt(false, &out).code(), absl::StatusCode::kNotFound);
}

TEST(StatusMacros, ReturnIfErrorStopsAtFirstError) {
  bool reached = false;
  EXPECT_EQ(Chain(absl::AbortedError("x"), &reached).code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(Chain(absl::OkStatus(), &reached).ok());
  EXPECT_TRUE(reached);
}

}  // namespace
}  // namespace ndx::common
