#include "libs/common/json_depth.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ndx::common {
namespace {

using ::testing::HasSubstr;

TEST(CheckJsonDepth, CountsArraysAndObjectsOutsideStrings) {
  EXPECT_TRUE(CheckJsonDepth(R"({"a":[{"b":[1]}]})", "x", 4).ok());
  EXPECT_FALSE(CheckJsonDepth(R"({"a":[{"b":[[1]]}]})", "x", 4).ok());
  // Brackets in strings, escaped quotes included, are text.
  EXPECT_TRUE(CheckJsonDepth(R"({"a":"[[[[[\"[[[[["})", "x", 2).ok());
  EXPECT_TRUE(CheckJsonDepth("", "x", 1).ok());
}

TEST(CheckJsonDepth, NamesWhatAndWhere) {
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const absl::Status s = CheckJsonDepth(deep, "request body");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("request body: JSON nested deeper than 1000 levels (at byte 1000)"));
  EXPECT_TRUE(CheckJsonDepth(std::string(1000, '[') + std::string(1000, ']'), "x").ok());
}

}  // namespace
}  // namespace ndx::common
