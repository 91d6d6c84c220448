// wait (also registered as `delay`): passes its input items through after a time.
//   mode afterInterval (default; also "timeInterval", and `delay`'s resumeOn "afterDelay"):
//     `duration` (or `amount`) in `unit` (or `timeUnit`): milliseconds | seconds (default) |
//     minutes | hours | days;
//   mode atDateTime (also "specificTime"): `dateTime` (ISO 8601; no offset = UTC).
//   mode onWebhook: not supported (INVALID_ARGUMENT at parse time).
// A wait whose remaining time is at most the engine's max_inline_wait sleeps on the
// cancellation token (CANCELLED when cancelled; DEADLINE_EXCEEDED if the node's deadline comes
// first). A longer one suspends: the engine checkpoints the run as waiting with
// state {resumeAtMs} and returns kSuspended, so the worker can park the job without holding a
// slot; when the execution is resumed the node sees its saved resume time and completes once
// it has passed (it never recomputes the time from "now").
#include <cmath>

#include "absl/strings/str_cat.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

absl::StatusOr<absl::Duration> UnitDuration(const std::string& unit) {
  if (unit == "milliseconds" || unit == "ms") return absl::Milliseconds(1);
  if (unit == "seconds" || unit.empty()) return absl::Seconds(1);
  if (unit == "minutes") return absl::Minutes(1);
  if (unit == "hours") return absl::Hours(1);
  if (unit == "days") return absl::Hours(24);
  return absl::InvalidArgumentError(absl::StrCat("unknown time unit \"", unit, "\""));
}

std::string Mode(const Json& p) {
  const Json& mode = nodes::Member(p, "mode");
  if (mode.is_string()) return mode.get<std::string>();
  const Json& resume = nodes::Member(p, "resumeOn");
  if (resume.is_string()) return resume.get<std::string>();
  return "afterInterval";
}

class WaitNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    const std::string mode = Mode(p);
    if (mode == "onWebhook" || mode == "webhook") {
      return absl::InvalidArgumentError("wait mode \"onWebhook\" is not supported by ndx");
    }
    if (mode != "afterInterval" && mode != "timeInterval" && mode != "afterDelay" &&
        mode != "atDateTime" && mode != "specificTime" && !IsExpression(Json(mode))) {
      return absl::InvalidArgumentError(absl::StrCat("unknown wait mode \"", mode, "\""));
    }
    for (const char* name : {"unit", "timeUnit"}) {
      const Json& unit = nodes::Member(p, name);
      if (unit.is_string() && !IsExpression(unit)) {
        absl::StatusOr<absl::Duration> d = UnitDuration(unit.get<std::string>());
        if (!d.ok()) return d.status();
      }
    }
    for (const char* name : {"duration", "amount"}) {
      absl::Status st = nodes::CheckNumber(nodes::Member(p, name), name, 0, 1e12);
      if (!st.ok()) return st;
    }
    const Json& dt = nodes::Member(p, "dateTime");
    if ((mode == "atDateTime" || mode == "specificTime") && dt.is_string() && !IsExpression(dt)) {
      absl::StatusOr<absl::Time> t = ParseIsoTime(dt.get<std::string>());
      if (!t.ok()) return t.status();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    auto fail = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(ctx.node().Label(), ": ", msg));
    };
    common::Clock& clock = ctx.clock();
    absl::Time resume_at;
    if (const Json* saved = ctx.resumed_state();
        saved != nullptr && nodes::Member(*saved, "resumeAtMs").is_number()) {
      resume_at = absl::FromUnixMillis(nodes::Member(*saved, "resumeAtMs").get<int64_t>());
    } else {
      absl::StatusOr<Json> mode_param = ctx.Param("mode", 0);
      if (!mode_param.ok()) return mode_param.status();
      Json params = ctx.node().parameters;
      if (mode_param->is_string()) params["mode"] = *mode_param;
      const std::string mode = Mode(params);
      if (mode == "atDateTime" || mode == "specificTime") {
        absl::StatusOr<Json> dt = ctx.Param("dateTime", 0);
        if (!dt.ok()) return dt.status();
        if (!dt->is_string() || dt->get_ref<const std::string&>().empty()) {
          return fail("Date & Time is required");
        }
        absl::StatusOr<absl::Time> t = ParseIsoTime(dt->get<std::string>());
        if (!t.ok()) return fail(t.status().message());
        resume_at = *t;
      } else if (mode == "afterInterval" || mode == "timeInterval" || mode == "afterDelay") {
        const char* amount_name = nodes::Member(params, "duration").is_null() &&
                                          !nodes::Member(params, "amount").is_null()
                                      ? "amount"
                                      : "duration";
        absl::StatusOr<Json> amount = ctx.Param(amount_name, 0);
        if (!amount.ok()) return amount.status();
        absl::StatusOr<double> n = NumberParam(*amount, amount_name, 5);
        if (!n.ok()) return fail(n.status().message());
        if (*n < 0 || std::isnan(*n)) return fail("the wait duration must not be negative");
        const char* unit_name =
            nodes::Member(params, "unit").is_null() && !nodes::Member(params, "timeUnit").is_null()
                ? "timeUnit"
                : "unit";
        absl::StatusOr<Json> unit = ctx.Param(unit_name, 0);
        if (!unit.ok()) return unit.status();
        absl::StatusOr<absl::Duration> per =
            UnitDuration(unit->is_string() ? unit->get<std::string>() : "");
        if (!per.ok()) return fail(per.status().message());
        resume_at = clock.Now() + *n * *per;
      } else {
        return fail(absl::StrCat("unknown wait mode \"", mode, "\""));
      }
    }
    const absl::Duration remaining = resume_at - clock.Now();
    if (remaining > ctx.max_inline_wait()) {
      NodeResult result;
      result.suspend = true;
      result.resume_at = resume_at;
      result.state = {{"resumeAtMs", absl::ToUnixMillis(resume_at)}};
      return result;
    }
    if (remaining > absl::ZeroDuration()) {
      const absl::Duration budget = ctx.deadline() - clock.Now();
      if (ctx.cancel().WaitFor(std::min(remaining, budget))) return ctx.cancel().reason();
      if (budget < remaining) {
        return absl::DeadlineExceededError(
            absl::StrCat(ctx.node().Label(), ": the deadline came before the end of the wait"));
      }
    }
    return NodeResult::Main(ctx.items());
  }
};

}  // namespace

std::unique_ptr<NodeType> NewWaitNode() { return std::make_unique<WaitNode>(); }

}  // namespace ndx::engine
