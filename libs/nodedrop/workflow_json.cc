#include "libs/nodedrop/workflow_json.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ndx::nodedrop {
namespace {

using Json = nlohmann::json;

absl::Status WrongType(const std::string& path, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": must be ", what));
}

// Reads an optional string member; numbers are accepted as ids (some exports number their ids).
absl::Status OptString(const Json& obj, const char* key, const std::string& path,
                       std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {
    *out = it->get<std::string>();
  } else if (it->is_number_integer()) {
    *out = it->dump();
  } else {
    return WrongType(absl::StrCat(path, ".", key), "a string");
  }
  return absl::OkStatus();
}

absl::Status OptBool(const Json& obj, const char* key, const std::string& path, bool* out,
                     bool* present = nullptr) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return WrongType(absl::StrCat(path, ".", key), "true or false");
  *out = it->get<bool>();
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

// True when `d` is a whole number that int64_t holds (casting any other double is undefined).
bool IsInt64(double d) { return d >= -0x1p63 && d < 0x1p63 && std::trunc(d) == d; }

absl::Status OptInt(const Json& obj, const char* key, const std::string& path, int64_t* out,
                    bool* present) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
  } else if (it->is_number_float() && IsInt64(it->get<double>())) {
    *out = static_cast<int64_t>(it->get<double>());
  } else {
    return WrongType(absl::StrCat(path, ".", key), "an integer");
  }
  *present = true;
  return absl::OkStatus();
}

absl::Status ConvertNodeSettings(const Json& st, const std::string& path, v1::NodeSettings* ns) {
  if (!st.is_object()) return WrongType(path, "an object");
  bool b = false;
  if (absl::Status s = OptBool(st, "continueOnFail", path, &b); !s.ok()) return s;
  ns->set_continue_on_fail(b);
  b = false;
  if (absl::Status s = OptBool(st, "alwaysOutputData", path, &b); !s.ok()) return s;
  ns->set_always_output_data(b);
  b = false;
  if (absl::Status s = OptBool(st, "retryOnFail", path, &b); !s.ok()) return s;
  ns->set_retry_on_fail(b);
  int64_t v = 0;
  bool present = false;
  if (absl::Status s = OptInt(st, "maxRetries", path, &v, &present); !s.ok()) return s;
  if (present) ns->set_max_retries(static_cast<int32_t>(v));
  present = false;
  if (absl::Status s = OptInt(st, "retryDelay", path, &v, &present); !s.ok()) return s;
  if (present) ns->set_retry_delay_ms(v);
  present = false;
  if (absl::Status s = OptInt(st, "timeout", path, &v, &present); !s.ok()) return s;
  if (present) ns->set_timeout_ms(v);
  return absl::OkStatus();
}

absl::Status ConvertNode(const Json& n, const std::string& path, v1::Node* node) {
  if (!n.is_object()) return WrongType(path, "an object");
  if (absl::Status s = OptString(n, "id", path, node->mutable_id()); !s.ok()) return s;
  if (node->id().empty()) return absl::InvalidArgumentError(absl::StrCat(path, ".id: missing"));
  if (absl::Status s = OptString(n, "name", path, node->mutable_name()); !s.ok()) return s;
  if (absl::Status s = OptString(n, "type", path, node->mutable_type()); !s.ok()) return s;
  if (auto p = n.find("parameters"); p != n.end() && !p->is_null()) {
    if (!p->is_object()) return WrongType(absl::StrCat(path, ".parameters"), "an object");
    node->set_parameters_json(p->dump());
  }
  if (node->type().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ".type: missing (node \"", node->id(), "\")"));
  }
  bool disabled = false;
  if (absl::Status s = OptBool(n, "disabled", path, &disabled); !s.ok()) return s;
  node->set_disabled(disabled);
  if (auto st = n.find("settings"); st != n.end() && !st->is_null()) {
    return ConvertNodeSettings(*st, absl::StrCat(path, ".settings"), node->mutable_settings());
  }
  return absl::OkStatus();
}

absl::Status ConvertConnection(const Json& c, const std::string& path, v1::Connection* conn) {
  if (!c.is_object()) return WrongType(path, "an object");
  if (absl::Status s = OptString(c, "id", path, conn->mutable_id()); !s.ok()) return s;
  if (absl::Status s = OptString(c, "sourceNodeId", path, conn->mutable_source_node_id());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = OptString(c, "sourceOutput", path, conn->mutable_source_output()); !s.ok()) {
    return s;
  }
  if (absl::Status s = OptString(c, "targetNodeId", path, conn->mutable_target_node_id());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = OptString(c, "targetInput", path, conn->mutable_target_input()); !s.ok()) {
    return s;
  }
  if (conn->source_node_id().empty() || conn->target_node_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": needs sourceNodeId and targetNodeId (NodeDrop's flat connection "
                     "list; n8n's nested connection map is not supported)"));
  }
  return absl::OkStatus();
}

absl::Status ConvertSettings(const Json& st, const std::string& path, v1::WorkflowSettings* ws) {
  if (!st.is_object()) return WrongType(path, "an object");
  int64_t v = 0;
  bool present = false;
  if (absl::Status s = OptInt(st, "executionTimeout", path, &v, &present); !s.ok()) return s;
  if (present) ws->set_execution_timeout_ms(v);
  bool b = false;
  present = false;
  if (absl::Status s = OptBool(st, "saveExecutionToDatabase", path, &b, &present); !s.ok()) {
    return s;
  }
  if (present) ws->set_save_execution_to_database(b);
  if (absl::Status s = OptString(st, "timezone", path, ws->mutable_timezone()); !s.ok()) return s;
  if (absl::Status s = OptString(st, "errorWorkflowId", path, ws->mutable_error_workflow_id());
      !s.ok()) {
    return s;
  }
  return OptString(st, "callerPolicy", path, ws->mutable_caller_policy());
}

}  // namespace

absl::StatusOr<v1::Workflow> WorkflowFromNodeDropJson(const Json& doc,
                                                      const std::string& default_id,
                                                      const std::string& field) {
  // Error paths: "nodes[0].type", or "workflowData.nodes[0].type" under a request field.
  const std::string prefix = field.empty() ? "" : absl::StrCat(field, ".");
  if (!doc.is_object()) return WrongType(field.empty() ? "the document" : field, "a JSON object");
  const Json* wf = &doc;
  std::string wf_path = field.empty() ? "workflow" : field;
  std::string at = prefix;
  if (!doc.contains("nodes") && doc.contains("workflow")) {
    wf = &doc["workflow"];
    wf_path = absl::StrCat(prefix, "workflow");
    at = absl::StrCat(wf_path, ".");
  }
  if (!wf->is_object()) return WrongType(wf_path, "an object");
  auto nodes = wf->find("nodes");
  if (nodes == wf->end() || !nodes->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        at,
        "nodes: missing or not an array; expected a NodeDrop workflow ({\"nodes\": [...], "
        "\"connections\": [...]}) or {\"workflow\": {...}}"));
  }
  v1::Workflow out;
  if (absl::Status s = OptString(*wf, "id", wf_path, out.mutable_id()); !s.ok()) return s;
  if (out.id().empty()) out.set_id(default_id);
  if (absl::Status s = OptString(*wf, "name", wf_path, out.mutable_name()); !s.ok()) return s;
  for (size_t i = 0; i < nodes->size(); ++i) {
    if (absl::Status s =
            ConvertNode((*nodes)[i], absl::StrCat(at, "nodes[", i, "]"), out.add_nodes());
        !s.ok()) {
      return s;
    }
  }
  if (auto conns = wf->find("connections"); conns != wf->end() && !conns->is_null()) {
    if (!conns->is_array()) return WrongType(absl::StrCat(at, "connections"), "an array");
    for (size_t i = 0; i < conns->size(); ++i) {
      if (absl::Status s = ConvertConnection((*conns)[i], absl::StrCat(at, "connections[", i, "]"),
                                             out.add_connections());
          !s.ok()) {
        return s;
      }
    }
  }
  if (auto st = wf->find("settings"); st != wf->end() && !st->is_null()) {
    if (absl::Status s = ConvertSettings(*st, absl::StrCat(at, "settings"), out.mutable_settings());
        !s.ok()) {
      return s;
    }
  }
  return out;
}

absl::StatusOr<v1::Workflow> LoadWorkflowFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the file"));
  std::stringstream buf;
  buf << in.rdbuf();
  Json doc = Json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  std::string stem = path;
  if (size_t slash = stem.find_last_of('/'); slash != std::string::npos) stem.erase(0, slash + 1);
  if (size_t dot = stem.rfind('.'); dot != std::string::npos && dot > 0) stem.erase(dot);
  absl::StatusOr<v1::Workflow> wf = WorkflowFromNodeDropJson(doc, stem);
  if (!wf.ok()) {
    return absl::Status(wf.status().code(), absl::StrCat(path, ": ", wf.status().message()));
  }
  return wf;
}

absl::StatusOr<std::string> ResolveNodeId(const v1::Workflow& workflow,
                                          const std::string& id_or_name) {
  for (const v1::Node& n : workflow.nodes()) {
    if (n.id() == id_or_name) return n.id();
  }
  for (const v1::Node& n : workflow.nodes()) {
    if (n.name() == id_or_name) return n.id();
  }
  std::vector<std::string> triggers;
  for (const v1::Node& n : workflow.nodes()) {
    if (n.type().find("trigger") != std::string::npos || n.type() == "workflow-called") {
      triggers.push_back(
          absl::StrCat("\"", n.name().empty() ? n.id() : n.name(), "\" (", n.id(), ")"));
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "no node with id or name \"", id_or_name, "\"",
      triggers.empty() ? "" : absl::StrCat("; trigger nodes: ", absl::StrJoin(triggers, ", "))));
}

}  // namespace ndx::nodedrop
