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

TEST(JsonNestingDepth, CountsOpenArraysAndObjects) {
  EXPECT_EQ(JsonNestingDepth(""), 0);
  EXPECT_EQ(JsonNestingDepth("1"), 0);
  EXPECT_EQ(JsonNestingDepth("[]"), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"a": [1, {"b": []}], "c": {}})"), 4);
  EXPECT_EQ(JsonNestingDepth("[][][]"), 1);
}

TEST(JsonNestingDepth, IgnoresBracketsInStrings) {
  EXPECT_EQ(JsonNestingDepth(R"(["[[[{{{", "\"[[["])"), 1);
  EXPECT_EQ(JsonNestingDepth(R"({"k\\": [[1]]})"), 3);
}

TEST(JsonNestingDepth, AcceptsAnyText) {
  EXPECT_EQ(JsonNestingDepth("]]]}}}[["), 2);
  EXPECT_EQ(JsonNestingDepth("\"unterminated [[["), 0);
  EXPECT_EQ(JsonNestingDepth("\"\\"), 0);
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(JsonNestingDepth(deep), 200000);
  EXPECT_GT(JsonNestingDepth(deep), kMaxJsonDepth);
}

}  // namespace
}  // namespace ndx::common
