#include "classify/request_info.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "classify/go_duration.h"
#include "classify/go_url.h"
#include "classify/request_info_json.h"
#include "classify/selectors.h"

namespace kubegate {
namespace {

bool GoBool(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string lower = *v;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return !(lower == "false" || lower == "0");
}

bool AllAreDryRunAll(const std::vector<std::string>& values) {
  return !values.empty() && std::all_of(values.begin(), values.end(), [](const std::string& v) { return v == "All"; });
}

// Mirrors DecodeParameters into ListOptions: any int that fails to parse or
// selector that fails to parse voids the whole decode (no name, and watch
// read from the raw first value).
Result<bool> ResolveListOrWatch(RequestInfo& info, const QueryValues& q) {
  bool decode_ok = true;
  for (const char* int_key : {"timeoutSeconds", "limit"}) {
    if (auto v = q.First(int_key); v && !ParsesAsInt64(*v)) decode_ok = false;
  }
  Verdict labels = Verdict::kValid;
  if (auto ls = q.First("labelSelector")) labels = CheckLabelSelector(*ls);
  FieldSelectorName field{true, std::string()};
  if (auto fs = q.First("fieldSelector")) field = ExactNameFromFieldSelector(*fs);
  if (!field.parsed) decode_ok = false;
  if (labels == Verdict::kInvalid) decode_ok = false;

  bool watch = GoBool(q.First("watch"));
  info.verb = watch ? "watch" : "list";
  if (!decode_ok) return true;
  const std::string& name = *field.name;
  if (name.empty() || !IsValidPathSegmentName(name)) return true;
  if (labels == Verdict::kUnsure) {
    return Error::BadRequest("kubegate cannot read this labelSelector together with a metadata.name fieldSelector; simplify the selector");
  }
  info.name = name;
  return true;
}

void FillStreaming(RequestInfo& info, const QueryValues& q) {
  if (info.resource != "pods" || !info.api_group.empty()) return;
  if (info.subresource == "exec" || info.subresource == "attach") {
    info.stream = info.subresource == "exec" ? StreamKind::kExec : StreamKind::kAttach;
    ExecInfo e;
    e.container = q.First("container").value_or("");
    e.command = q.All("command");
    e.stdin_ = GoBool(q.First("stdin"));
    e.stdout_ = GoBool(q.First("stdout"));
    e.stderr_ = GoBool(q.First("stderr"));
    e.tty = GoBool(q.First("tty"));
    info.exec = std::move(e);
  } else if (info.subresource == "portforward") {
    info.stream = StreamKind::kPortForward;
    info.ports = q.All("ports");
  }
}

// RFC 7230 token characters: what Go's HTTP server accepts as a method.
bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// kube-apiserver's BasicLongRunningRequestCheck: verbs watch and proxy, and
// the subresources attach, exec, proxy, log and portforward.
bool LongRunning(const RequestInfo& info) {
  if (info.verb == "watch" || info.verb == "proxy") return true;
  const std::string& sub = info.subresource;
  return info.is_resource_request &&
         (sub == "attach" || sub == "exec" || sub == "proxy" || sub == "log" || sub == "portforward");
}

// RequestInfoFactory.NewRequestInfo's reading of method and target.
// `q` receives the query as Go parses it (read once per request).
Result<RequestInfo> ReadTarget(std::string_view method, std::string_view raw_target, QueryValues& q) {
  auto target = ParseRequestTarget(raw_target);
  if (!target) return target.error();
  RequestInfo info;
  info.path = target->path;
  info.raw_query = target->raw_query;
  info.verb.assign(method);
  std::transform(info.verb.begin(), info.verb.end(), info.verb.begin(), [](unsigned char c) { return std::tolower(c); });
  q = ParseQuery(target->raw_query);

  std::vector<std::string> cur = SplitPathSegments(info.path);  // RequestInfo splitPath
  if (cur.size() < 3) return info;
  if (cur[0] != "api" && cur[0] != "apis") return info;
  info.api_prefix = cur[0];
  std::size_t at = 1;
  if (info.api_prefix == "apis") {
    if (cur.size() - at < 3) return info;
    info.api_group = cur[at++];
  }
  info.is_resource_request = true;
  info.api_version = cur[at++];

  if (cur[at] == "watch" || cur[at] == "proxy") {
    if (cur.size() - at < 2) {
      return Error::BadRequest("unable to determine kind and namespace from url " + std::string(raw_target));
    }
    info.verb = cur[at++];
  } else if (method == "POST") {
    info.verb = "create";
  } else if (method == "GET" || method == "HEAD") {
    info.verb = "get";
  } else if (method == "PUT") {
    info.verb = "update";
  } else if (method == "PATCH") {
    info.verb = "patch";
  } else if (method == "DELETE") {
    info.verb = "delete";
  } else {
    info.verb = "";
  }

  if (cur[at] == "namespaces") {
    if (cur.size() - at > 1) {
      info.namespace_ = cur[at + 1];
      if (cur.size() - at > 2 && cur[at + 2] != "status" && cur[at + 2] != "finalize") at += 2;
    }
  }
  info.parts.assign(cur.begin() + static_cast<std::ptrdiff_t>(at), cur.end());
  const auto& p = info.parts;
  if (p.size() >= 3 && info.verb != "proxy") info.subresource = p[2];
  if (p.size() >= 2) info.name = p[1];
  if (p.size() >= 1) info.resource = p[0];

  if (info.name.empty() && info.verb == "get") {
    auto r = ResolveListOrWatch(info, q);
    if (!r) return r.error();
  }
  if (info.name.empty() && info.verb == "delete") info.verb = "deletecollection";

  FillStreaming(info, q);
  // The API server honours dryRun only where it would persist something:
  // writes to objects. Reads ignore it, and connect subresources (exec,
  // attach, portforward, proxy) run for real whatever the query says, so
  // for those a dryRun=All must not read as harmless.
  info.dry_run = HonoursDryRun(info) && AllAreDryRunAll(q.All("dryRun"));
  return info;
}

}  // namespace

Result<RequestInfo> ClassifyRequest(std::string_view method, std::string_view raw_target) {
  if (!IsHttpToken(method)) return Error::BadRequest("the method is not an HTTP token");
  QueryValues q;
  auto info = ReadTarget(method, raw_target, q);
  if (!info) return info;
  // The API server's request deadline filter answers 400 before anything
  // else when a request that is not long-running has a timeout Go cannot
  // parse (filters/request_deadline.go parseTimeout), resource or not.
  auto timeout = q.First("timeout");
  if (timeout && !timeout->empty() && !LongRunning(*info) && !IsGoDuration(*timeout)) {
    return Error::BadRequest("invalid timeout specified in the request URL: time: invalid duration \"" + *timeout + "\"");
  }
  return info;
}

bool IsWrite(const RequestInfo& info) {
  const bool write = info.verb == "create" || info.verb == "update" || info.verb == "patch" ||
                     info.verb == "delete" || info.verb == "deletecollection";
  return write && info.stream == StreamKind::kNone;
}

bool HonoursDryRun(const RequestInfo& info) {
  return info.is_resource_request && IsWrite(info) && info.subresource != "proxy";
}

bool NeedsBodyToClassify(const RequestInfo& info) {
  return info.is_resource_request && (info.verb == "delete" || info.verb == "deletecollection");
}

void ApplyDeleteBody(RequestInfo& info, std::string_view content_type, std::string_view body) {
  if (body.empty()) return;  // the query's options stand
  info.dry_run = false;
  if (!HonoursDryRun(info)) return;
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (!media.empty() && media != "application/json") return;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  auto it = j.find("dryRun");
  if (it == j.end() || !it->is_array()) return;
  std::vector<std::string> values;
  for (const auto& v : *it) {
    if (!v.is_string()) return;
    values.push_back(v.get<std::string>());
  }
  info.dry_run = AllAreDryRunAll(values);
}

std::vector<std::pair<std::string, std::string>> ActingQuery(const RequestInfo& info) {
  static constexpr std::string_view kNotActing[] = {
      "resourceVersion", "resourceVersionMatch", "limit", "continue", "timeoutSeconds", "timeout",
      "allowWatchBookmarks", "sendInitialEvents", "pretty", "watch"};
  auto skipped = [&](const std::string& key) {
    if (info.exec && (key == "command" || key == "container")) return true;
    return std::find(std::begin(kNotActing), std::end(kNotActing), key) != std::end(kNotActing);
  };
  std::vector<std::pair<std::string, std::string>> out;
  const QueryValues q = ParseQuery(info.raw_query);  // named: pairs() refers into it
  for (const auto& kv : q.pairs()) {
    if (!skipped(kv.first)) out.push_back(kv);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::pair<std::string, std::string>> SelectorQuery(const RequestInfo& info) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& kv : ActingQuery(info)) {
    if (kv.first == "labelSelector" || kv.first == "fieldSelector") out.push_back(std::move(kv));
  }
  return out;
}

const char* StreamKindName(StreamKind k) {
  switch (k) {
    case StreamKind::kExec: return "exec";
    case StreamKind::kAttach: return "attach";
    case StreamKind::kPortForward: return "portforward";
    case StreamKind::kNone: break;
  }
  return "";
}

nlohmann::json RequestInfoJson(const RequestInfo& info) {
  nlohmann::json j;
  j["isResourceRequest"] = info.is_resource_request;
  j["path"] = info.path;
  j["verb"] = info.verb;
  j["apiPrefix"] = info.api_prefix;
  j["apiGroup"] = info.api_group;
  j["apiVersion"] = info.api_version;
  j["namespace"] = info.namespace_;
  j["resource"] = info.resource;
  j["subresource"] = info.subresource;
  j["name"] = info.name;
  j["parts"] = info.parts;
  j["dryRun"] = info.dry_run;
  if (info.stream != StreamKind::kNone) j["stream"] = StreamKindName(info.stream);
  if (info.exec) {
    j["exec"] = {{"container", info.exec->container}, {"command", info.exec->command},
                 {"stdin", info.exec->stdin_}, {"stdout", info.exec->stdout_},
                 {"stderr", info.exec->stderr_}, {"tty", info.exec->tty}};
  }
  if (!info.ports.empty()) j["ports"] = info.ports;
  return j;
}

std::string ToJson(const RequestInfo& info) {
  // Paths and argv are untrusted bytes: invalid UTF-8 is replaced.
  return RequestInfoJson(info).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kubegate
