#include "services/gateway/socketio_packet.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "libs/common/json_depth.h"

namespace ndx::gateway {

std::optional<SocketIoPacket> ParseSocketIoPacket(std::string_view p) {
  if (p.empty()) return std::nullopt;
  SocketIoPacket packet;
  packet.type = p[0];
  if (packet.type == '5' || packet.type == '6') return packet;
  size_t i = 1;
  if (i < p.size() && p[i] == '/') {
    const size_t comma = p.find(',', i);
    packet.nsp =
        std::string(p.substr(i, comma == std::string_view::npos ? p.size() - i : comma - i));
    i = comma == std::string_view::npos ? p.size() : comma + 1;
  }
  size_t digits = i;
  while (digits < p.size() && absl::ascii_isdigit(p[digits])) ++digits;
  if (digits > i) {
    int64_t id = 0;
    if (absl::SimpleAtoi(std::string(p.substr(i, digits - i)), &id)) packet.ack_id = id;
    i = digits;
  }
  if (i < p.size()) {
    // Checked before parsing: a deeply nested value would overflow the stack when dumped.
    packet.error = common::CheckJsonDepth(p.substr(i), "packet");
    if (!packet.error.ok()) return packet;
    packet.payload = Json::parse(p.substr(i), nullptr, /*allow_exceptions=*/false);
    if (packet.payload.is_discarded()) {
      packet.payload = nullptr;
      packet.error = absl::InvalidArgumentError("packet: data is not valid JSON");
    }
  }
  return packet;
}

}  // namespace ndx::gateway
