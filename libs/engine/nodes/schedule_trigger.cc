// schedule-trigger: starts a workflow on a schedule (the queue's scheduler fires it; the engine
// only shapes the data). Parameters: scheduleMode (simple | datetime | cron), cronExpression,
// interval, timeOfDay, dayOfWeek, dayOfMonth, timezone. Output, one item:
//   {timestamp: <trigger data "timestamp"/"scheduledTime", else now>, triggerType: "schedule",
//    scheduleMode, ...other trigger data fields}
// A literal cronExpression must have 5 or 6 fields (checked at parse time).
#include "absl/strings/str_split.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"

namespace ndx::engine {
namespace {

class ScheduleTriggerNode final : public NodeType {
 public:
  bool is_trigger() const override { return true; }

  absl::Status Validate(const Json& p) const override {
    absl::Status st = nodes::CheckEnum(nodes::Member(p, "scheduleMode"), "scheduleMode",
                                       {"simple", "datetime", "cron"});
    if (!st.ok()) return st;
    const Json& cron = nodes::Member(p, "cronExpression");
    const Json& mode = nodes::Member(p, "scheduleMode");
    if (mode == "cron" && cron.is_string() && !IsExpression(cron)) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(cron.get_ref<const std::string&>(), ' ', absl::SkipWhitespace());
      if (fields.size() != 5 && fields.size() != 6) {
        return absl::InvalidArgumentError("parameter \"cronExpression\" must have 5 or 6 fields");
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    absl::StatusOr<Json> mode = ctx.Param("scheduleMode", -1);
    if (!mode.ok()) return mode.status();
    const Json& td = ctx.trigger_data();
    Json out = Json::object();
    const Json& ts = nodes::Member(td, "timestamp");
    const Json& scheduled = nodes::Member(td, "scheduledTime");
    out["timestamp"] = ts.is_string()          ? ts.get<std::string>()
                       : scheduled.is_string() ? scheduled.get<std::string>()
                                               : FormatIsoTime(ctx.clock().Now());
    out["triggerType"] = "schedule";
    out["scheduleMode"] = mode->is_string() ? mode->get<std::string>() : std::string("simple");
    if (td.is_object()) {
      for (auto it = td.begin(); it != td.end(); ++it) {
        if (!out.contains(it.key())) out[it.key()] = it.value();
      }
    }
    return NodeResult::Main(Json::array({MakeItem(std::move(out))}));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewScheduleTriggerNode() {
  return std::make_unique<ScheduleTriggerNode>();
}

}  // namespace ndx::engine
