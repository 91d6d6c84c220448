#include "libs/common/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ndx::log {
namespace {

TEST(Log, FormatsOneJsonObjectWithTypedFields) {
  const std::string line =
      FormatLine(absl::FromUnixMillis(1767225600123), "ndx-worker", Level::kWarn, "lease lost",
                 {{"execution", "e-1"}, {"epoch", 3}, {"ratio", 0.5}, {"fenced", true}});
  EXPECT_EQ(line,
            "{\"ts\":\"2026-01-01T00:00:00.123Z\",\"level\":\"warn\",\"svc\":\"ndx-worker\","
            "\"msg\":\"lease lost\",\"execution\":\"e-1\",\"epoch\":3,\"ratio\":0.5,"
            "\"fenced\":true}");
  EXPECT_TRUE(nlohmann::json::accept(line));
}

TEST(Log, EscapesControlCharactersQuotesAndInvalidUtf8) {
  const std::string line =
      FormatLine(absl::UnixEpoch(), "s", Level::kInfo, "a\"b\\c\nd\x01 \xC3\xA9 \xFF end", {});
  const nlohmann::json j = nlohmann::json::parse(line);  // throws on invalid JSON or UTF-8
  EXPECT_EQ(j["msg"], "a\"b\\c\nd\x01 \xC3\xA9 \xEF\xBF\xBD end");
}

TEST(Log, StatusFieldsAreText) {
  const std::string line = FormatLine(absl::UnixEpoch(), "s", Level::kError, "x",
                                      {{"error", absl::UnavailableError("redis down")}});
  EXPECT_EQ(nlohmann::json::parse(line)["error"], "UNAVAILABLE: redis down");
}

TEST(Log, LevelFilter) {
  Init("t", Level::kWarn);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  Init("t", ParseLevel("debug"));
  EXPECT_TRUE(Enabled(Level::kDebug));
  EXPECT_EQ(ParseLevel("nonsense"), Level::kInfo);
}

}  // namespace
}  // namespace ndx::log
