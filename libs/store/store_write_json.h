// File: store_write_json.h
//
// The JSON form of a StoreWrite, as the outbox keeps it in Redis:
//
//   {"v":1,"op":"<op id>","t":"create"|"enqueue_failed"|"start"|"nodes"|"finish","w":{...}}
//
// Times are integer microseconds since the Unix epoch (absent = null); JSON payloads (trigger
// data, outputs, errors) are kept as their text, so they round-trip byte for byte.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/store/execution_store.h"

namespace ndx::store {

struct OutboxOp {
  std::string op_id;
  StoreWrite write;
};

// A new random op id (32 hex digits), unique with overwhelming probability.
std::string NewOpId();

// Serializes an op (one line of JSON).
std::string OutboxOpToJson(const OutboxOp& op);

// Parses OutboxOpToJson()'s output. kInvalidArgument for anything else.
absl::StatusOr<OutboxOp> OutboxOpFromJson(absl::string_view text);

}  // namespace ndx::store
