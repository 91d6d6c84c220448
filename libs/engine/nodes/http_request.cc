// http-request: one HTTP request per node run (as NodeDrop; parameters resolved against the
// first input item) through HttpClient. Parameters:
//   method (GET | POST | PUT | PATCH | DELETE | HEAD | OPTIONS; default GET), url (required),
//   headers (object or JSON text), query / queryParameters (object or JSON text; appended
//   URL-encoded), body (object/array -> JSON; string -> as is), bodyType (json | text | form;
//   form encodes an object as application/x-www-form-urlencoded), timeout (ms, default 30000,
//   capped by the node's deadline), followRedirects (true), maxRedirects (5), responseFormat
//   (dataOnly | fullResponse -> {status, statusText, headers, data, responseTime, url, ok}),
//   authentication (none | basic | bearer, also httpBasicAuth / httpBearerAuth) with
//   username + password, or token.
// Requests other than GET/HEAD/OPTIONS carry `Idempotency-Key: <executionId>:<runKey>` (the run
// key is the node id outside Loop bodies) unless the headers set one. A JSON response
// (content-type */json or *+json) is parsed; anything else is text. Status >= 400 is an error
// (unless settings.alwaysOutputData: then it is output as data): 4xx FAILED_PRECONDITION
// (permanent), 5xx UNAVAILABLE (transient); connection errors UNAVAILABLE and timeouts
// DEADLINE_EXCEEDED (transient); a response over the size cap RESOURCE_EXHAUSTED. With
// settings.continueOnFail the error becomes NodeDrop's item {error: true, errorMessage,
// errorType, statusCode, url, method, timestamp, details}.
#include <cctype>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json_depth.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/nodes/node_util.h"
#include "libs/engine/value_util.h"
#include "libs/engine/workflow.h"

namespace ndx::engine {
namespace {

std::string UrlEncode(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FormEncode(const Json& obj) {
  std::string out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, UrlEncode(it.key()), "=", UrlEncode(ValueToText(it.value())));
  }
  return out;
}

absl::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// An object parameter given as an object or as JSON text.
absl::StatusOr<Json> ObjectParam(const Json& v, absl::string_view name) {
  if (v.is_null()) return Json::object();
  if (v.is_object()) return v;
  if (v.is_string()) {
    if (absl::StripAsciiWhitespace(v.get_ref<const std::string&>()).empty()) return Json::object();
    Json parsed = common::ParseJsonBounded<Json>(v.get_ref<const std::string&>());
    if (parsed.is_object()) return parsed;
  }
  if (v.is_array()) {  // [{name, value}] rows
    Json obj = Json::object();
    for (const Json& row : v) {
      const Json& r = nodes::Unwrap(row);
      const Json& n =
          nodes::Member(r, "name").is_null() ? nodes::Member(r, "key") : nodes::Member(r, "name");
      if (n.is_string() && !n.get_ref<const std::string&>().empty()) {
        obj[n.get<std::string>()] = nodes::Member(r, "value");
      }
    }
    return obj;
  }
  return absl::InvalidArgumentError(absl::StrCat("Invalid ", std::string(name), " JSON format"));
}

const char* ErrorType(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return "NETWORK_ERROR";
    case absl::StatusCode::kDeadlineExceeded:
      return "TIMEOUT";
    case absl::StatusCode::kResourceExhausted:
      return "RESPONSE_TOO_LARGE";
    case absl::StatusCode::kFailedPrecondition:
      return "TOO_MANY_REDIRECTS";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_REQUEST";
    default:
      return "UNKNOWN_ERROR";
  }
}

class HttpRequestNode final : public NodeType {
 public:
  absl::Status Validate(const Json& p) const override {
    absl::Status st =
        nodes::CheckEnum(nodes::Member(p, "method"), "method",
                         {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"});
    if (!st.ok()) return st;
    const Json& url = nodes::Member(p, "url");
    if (!url.is_string() || absl::StripAsciiWhitespace(url.get_ref<const std::string&>()).empty()) {
      return absl::InvalidArgumentError("parameter \"url\" is required");
    }
    // One call each: an initializer_list inside a pair does not outlive the pair's construction
    // (ASan: stack-use-after-scope when the lists were a table of pairs).
    st = nodes::CheckEnum(nodes::Member(p, "responseFormat"), "responseFormat",
                          {"dataOnly", "fullResponse"});
    if (!st.ok()) return st;
    st = nodes::CheckEnum(nodes::Member(p, "bodyType"), "bodyType", {"json", "text", "form"});
    if (!st.ok()) return st;
    st = nodes::CheckEnum(nodes::Member(p, "authentication"), "authentication",
                          {"none", "basic", "bearer", "httpBasicAuth", "httpBearerAuth", ""});
    if (!st.ok()) return st;
    st = nodes::CheckNumber(nodes::Member(p, "timeout"), "timeout", 1, 3.6e6);
    if (!st.ok()) return st;
    return nodes::CheckNumber(nodes::Member(p, "maxRedirects"), "maxRedirects", 0, 100);
  }

  absl::StatusOr<NodeResult> Execute(NodeContext& ctx) const override {
    const Node& node = ctx.node();
    auto param = [&](const char* name) { return ctx.Param(name, 0); };
    auto bad = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(node.Label(), ": ", msg));
    };
    absl::StatusOr<Json> method_p = param("method");
    if (!method_p.ok()) return method_p.status();
    std::string method =
        method_p->is_string() ? absl::AsciiStrToUpper(method_p->get<std::string>()) : "GET";
    if (method.empty()) method = "GET";
    absl::StatusOr<Json> url_p = param("url");
    if (!url_p.ok()) return url_p.status();
    std::string url(absl::StripAsciiWhitespace(ValueToText(*url_p)));
    if (url.empty()) return bad("URL is required");

    HttpClientRequest req;
    req.method = method;
    // Query.
    absl::StatusOr<Json> query_p =
        param(nodes::Member(node.parameters, "query").is_null() ? "queryParameters" : "query");
    if (!query_p.ok()) return query_p.status();
    absl::StatusOr<Json> query = ObjectParam(*query_p, "query");
    if (!query.ok()) return bad(query.status().message());
    if (!query->empty()) {
      absl::StrAppend(&url, url.find('?') == std::string::npos ? "?" : "&", FormEncode(*query));
    }
    req.url = url;
    // Headers.
    absl::StatusOr<Json> headers_p = param("headers");
    if (!headers_p.ok()) return headers_p.status();
    absl::StatusOr<Json> headers = ObjectParam(*headers_p, "headers");
    if (!headers.ok()) return bad(headers.status().message());
    auto has_header = [&](absl::string_view name) {
      for (const auto& [k, v] : req.headers) {
        if (absl::EqualsIgnoreCase(k, name)) return true;
      }
      return false;
    };
    for (auto it = headers->begin(); it != headers->end(); ++it) {
      req.headers.emplace_back(it.key(), ValueToText(it.value()));
    }
    // Authentication.
    absl::StatusOr<Json> auth_p = param("authentication");
    if (!auth_p.ok()) return auth_p.status();
    const std::string auth = auth_p->is_string() ? auth_p->get<std::string>() : "none";
    if (auth == "basic" || auth == "httpBasicAuth") {
      absl::StatusOr<Json> user = param("username");
      if (!user.ok()) return user.status();
      absl::StatusOr<Json> pass = param("password");
      if (!pass.ok()) return pass.status();
      req.headers.emplace_back(
          "Authorization",
          absl::StrCat("Basic ", absl::Base64Escape(
                                     absl::StrCat(ValueToText(*user), ":", ValueToText(*pass)))));
    } else if (auth == "bearer" || auth == "httpBearerAuth") {
      absl::StatusOr<Json> token = param("token");
      if (!token.ok()) return token.status();
      req.headers.emplace_back("Authorization", absl::StrCat("Bearer ", ValueToText(*token)));
    }
    // Body.
    if (method != "GET" && method != "HEAD") {
      absl::StatusOr<Json> body = param("body");
      if (!body.ok()) return body.status();
      absl::StatusOr<Json> type_p = param("bodyType");
      if (!type_p.ok()) return type_p.status();
      std::string type = type_p->is_string() ? type_p->get<std::string>() : "";
      if (!body->is_null() && !(body->is_string() && body->get_ref<const std::string&>().empty())) {
        if (type.empty()) type = body->is_string() ? "text" : "json";
        const char* content_type = nullptr;
        if (type == "form") {
          absl::StatusOr<Json> obj = ObjectParam(*body, "body");
          if (!obj.ok()) return bad(obj.status().message());
          req.body = FormEncode(*obj);
          content_type = "application/x-www-form-urlencoded";
        } else if (type == "text") {
          req.body = ValueToText(*body);
          content_type = body->is_string() ? nullptr : "text/plain";
        } else {
          req.body = body->is_string() ? body->get<std::string>() : body->dump();
          content_type = "application/json";
        }
        if (content_type != nullptr && !has_header("Content-Type")) {
          req.headers.emplace_back("Content-Type", content_type);
        }
      }
    }
    if (method != "GET" && method != "HEAD" && method != "OPTIONS" &&
        !has_header("Idempotency-Key")) {
      req.headers.emplace_back("Idempotency-Key",
                               absl::StrCat(ctx.execution().execution_id, ":", ctx.run_key()));
    }
    // Limits.
    absl::StatusOr<Json> timeout_p = param("timeout");
    if (!timeout_p.ok()) return timeout_p.status();
    absl::StatusOr<double> timeout_ms = NumberParam(*timeout_p, "timeout", 30000);
    if (!timeout_ms.ok()) return bad(timeout_ms.status().message());
    req.timeout = std::min(absl::Milliseconds(*timeout_ms <= 0 ? 30000 : *timeout_ms),
                           ctx.deadline() - ctx.clock().Now());
    absl::StatusOr<Json> follow_p = param("followRedirects");
    if (!follow_p.ok()) return follow_p.status();
    absl::StatusOr<bool> follow = BoolParam(*follow_p, "followRedirects", true);
    if (!follow.ok()) return bad(follow.status().message());
    req.follow_redirects = *follow;
    absl::StatusOr<Json> max_p = param("maxRedirects");
    if (!max_p.ok()) return max_p.status();
    absl::StatusOr<double> max_redirects = NumberParam(*max_p, "maxRedirects", 5);
    if (!max_redirects.ok()) return bad(max_redirects.status().message());
    req.max_redirects = static_cast<int>(*max_redirects);
    req.max_response_bytes = ctx.max_http_response_bytes();
    absl::StatusOr<Json> format_p = param("responseFormat");
    if (!format_p.ok()) return format_p.status();
    const bool full = *format_p == "fullResponse";

    auto error_item = [&](absl::Status st, const char* type, Json status_code, Json details) {
      Json item = {{"error", true},
                   {"errorMessage", std::string(st.message())},
                   {"errorType", type},
                   {"statusCode", std::move(status_code)},
                   {"url", req.url},
                   {"method", method},
                   {"timestamp", FormatIsoTime(ctx.clock().Now())},
                   {"details", std::move(details)}};
      return WithErrorItem(std::move(st), item);
    };
    if (req.timeout <= absl::ZeroDuration()) {
      return error_item(absl::DeadlineExceededError(absl::StrCat(
                            node.Label(), ": no time left for ", method, " ", req.url)),
                        "TIMEOUT", Json(), Json::object());
    }
    const HttpClient* client = ctx.http();
    if (client == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(node.Label(), ": no HTTP client in this process"));
    }
    const absl::Time started = ctx.clock().Now();
    absl::StatusOr<HttpClientResponse> res = client->Perform(req, &ctx.cancel());
    if (!res.ok()) {
      if (res.status().code() == absl::StatusCode::kCancelled) return res.status();
      return error_item(
          absl::Status(res.status().code(),
                       absl::StrCat(method, " ", req.url, " failed: ", res.status().message())),
          ErrorType(res.status().code()), Json(), Json::object());
    }
    Json response_headers = Json::object();
    std::string content_type;
    for (const auto& [k, v] : res->headers) {
      response_headers[k] = v;
      if (k == "content-type") content_type = absl::AsciiStrToLower(v);
    }
    Json data;
    // A JSON body nested deeper than ndx's limit stays text, as one that does not parse does: the
    // server is not ours, and the parsed value would overflow the stack when it is dumped.
    if ((absl::StrContains(content_type, "/json") || absl::StrContains(content_type, "+json")) &&
        common::CheckJsonDepth(res->body, "response").ok()) {
      data = Json::parse(res->body, nullptr, false);
      if (data.is_discarded()) data = res->body;
    } else {
      data = res->body;
    }
    const int status = res->status;
    if (status >= 400 && !node.settings.always_output_data) {
      const std::string message = absl::StrCat("HTTP ", status, " ", StatusText(status));
      absl::Status st = status >= 500
                            ? absl::UnavailableError(absl::StrCat(node.Label(), ": ", method, " ",
                                                                  req.url, ": ", message))
                            : absl::FailedPreconditionError(absl::StrCat(
                                  node.Label(), ": ", method, " ", req.url, ": ", message));
      return error_item(std::move(st), status >= 500 ? "SERVER_ERROR" : "CLIENT_ERROR", status,
                        {{"statusText", StatusText(status)}, {"responseBody", data}});
    }
    Json out;
    if (full) {
      out = {{"status", status},
             {"statusText", StatusText(status)},
             {"headers", std::move(response_headers)},
             {"data", std::move(data)},
             {"responseTime", absl::ToInt64Milliseconds(ctx.clock().Now() - started)},
             {"url", res->final_url.empty() ? req.url : res->final_url},
             {"ok", status >= 200 && status < 300}};
    } else {
      out = std::move(data);
    }
    return NodeResult::Main(Json::array({MakeItem(std::move(out))}));
  }
};

}  // namespace

std::unique_ptr<NodeType> NewHttpRequestNode() { return std::make_unique<HttpRequestNode>(); }

}  // namespace ndx::engine
