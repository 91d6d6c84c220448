#include "libs/common/json_depth.h"

#include <string>

#include "gtest/gtest.h"

namespace ndx::common {
namespace {

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
