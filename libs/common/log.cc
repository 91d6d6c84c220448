#include "libs/common/log.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace ndx::log {
namespace {

struct LoggerState {
  absl::Mutex mu;
  std::string service = "ndx";
};

LoggerState& State() {
  static LoggerState* state = new LoggerState();
  return *state;
}

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  uint32_t min = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = c & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    const unsigned char uc = static_cast<unsigned char>(c);
    if (uc < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", uc);
      out += buf;
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  out.push_back('"');
}

void Value::AppendJson(std::string& out) const {
  if (const auto* s = std::get_if<std::string_view>(&v_)) {
    AppendJsonString(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&v_)) {
    absl::StrAppend(&out, *i);
  } else if (const auto* d = std::get_if<double>(&v_)) {
    if (std::isfinite(*d)) {
      absl::StrAppend(&out, *d);
    } else {
      out += "null";
    }
  } else {
    out += std::get<bool>(v_) ? "true" : "false";
  }
}

void Init(std::string_view service, Level min_level) {
  LoggerState& state = State();
  absl::MutexLock lock(&state.mu);
  state.service = std::string(service);
  g_min_level.store(static_cast<int>(min_level));
}

Level ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(); }

std::string FormatLine(absl::Time now, std::string_view service, Level level, std::string_view msg,
                       std::initializer_list<Field> fields) {
  std::string line;
  line.reserve(128);
  line += "{\"ts\":\"";
  line += absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone());
  line += "\",\"level\":\"";
  line += LevelName(level);
  line += "\",\"svc\":";
  AppendJsonString(line, service);
  line += ",\"msg\":";
  AppendJsonString(line, msg);
  for (const Field& f : fields) {
    line.push_back(',');
    AppendJsonString(line, f.key);
    line.push_back(':');
    f.value.AppendJson(line);
  }
  line.push_back('}');
  return line;
}

void Write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  LoggerState& state = State();
  absl::MutexLock lock(&state.mu);
  std::string line = FormatLine(absl::Now(), state.service, level, msg, fields);
  line.push_back('\n');
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace ndx::log
