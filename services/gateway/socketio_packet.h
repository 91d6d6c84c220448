// File: socketio_packet.h
//
// Decoding of the Socket.IO v4 packets the gateway receives (realtime.h), kept apart from the
// session so that it can be tested and fuzzed on its own. A WebSocket text frame is an Engine.IO 4
// packet: one type character, then its data; an Engine.IO "message" ('4') carries one Socket.IO
// packet: <type>[<attachments>-][/<nsp>,][<ack id>][<json>].
//
//   std::optional<SocketIoPacket> p = ParseSocketIoPacket(R"(21["subscribe-execution","x"])");
//   // p->type == '2', p->ack_id == 1, p->payload == ["subscribe-execution", "x"]
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "services/gateway/api_json.h"

namespace ndx::gateway {

struct SocketIoPacket {
  char type = 0;                  // '0' CONNECT, '1' DISCONNECT, '2' EVENT, '3' ACK, ... '6'
  std::string nsp = "/";          // the namespace, "/" when absent
  std::optional<int64_t> ack_id;  // present when the sender wants an acknowledgement
  Json payload;                   // null when the packet has none, or when `error` is set
  // OK, or why the payload was refused (INVALID_ARGUMENT: "packet: data is not valid JSON",
  // "packet: JSON nested deeper than 1000 levels (at byte N)"); the sender's ack id is kept so
  // that it can be told.
  absl::Status error;
};

// Decodes one Socket.IO packet (the text after the Engine.IO type '4'). Binary packets ('5', '6')
// come back with only `type` set: the gateway does not support them. nullopt when the text is
// empty. A payload that is not JSON or nests deeper than common::kMaxJsonDepth sets `error`.
std::optional<SocketIoPacket> ParseSocketIoPacket(std::string_view text);

}  // namespace ndx::gateway
