#include "audit/audit_api.h"

#include <algorithm>

#include "audit/audit_format.h"
#include "audit/recording_link.h"
#include "classify/go_url.h"
#include "common/clock.h"
#include "common/k8s_status.h"
#include "common/limits.h"

namespace kubegate {
namespace {

AuditApiResponse StatusResponse(const Error& e) { return {e.http_code, "application/json", StatusJson(e)}; }

}  // namespace

bool IsAuditApiPath(std::string_view path) {
  return path == kAuditApiPrefix || (path.size() > kAuditApiPrefix.size() && path.substr(0, kAuditApiPrefix.size()) == kAuditApiPrefix &&
                                     path[kAuditApiPrefix.size()] == '/');
}

bool IsAuditor(const Identity& who, const AuditorsConfig& a) {
  if (std::find(a.users.begin(), a.users.end(), who.user) != a.users.end()) return true;
  for (const auto& g : who.groups) {
    if (std::find(a.groups.begin(), a.groups.end(), g) != a.groups.end()) return true;
  }
  return false;
}

Result<std::int64_t> ParseTimeBound(std::string_view text, std::int64_t now_ms) {
  if (auto d = ParseDurationMillis(text)) return now_ms - *d;
  auto t = ParseRfc3339(text);
  if (!t) return Error::BadRequest("not a time (RFC 3339) or a duration back from now (1h): " + std::string(text));
  return *t;
}

Result<AuditApiRequest> ParseAuditApiRequest(std::string_view path, std::string_view raw_query, std::int64_t now_ms) {
  AuditApiRequest r;
  if (path.size() > kAuditApiPrefix.size() + 1) {
    r.show = true;
    r.request_id = std::string(path.substr(kAuditApiPrefix.size() + 1));
    constexpr std::string_view kRecording = "/recording";
    if (r.request_id.size() > kRecording.size() &&
        r.request_id.compare(r.request_id.size() - kRecording.size(), kRecording.size(), kRecording) == 0) {
      r.recording = true;
      r.request_id.resize(r.request_id.size() - kRecording.size());
    }
    if (r.request_id.find('/') != std::string::npos) return Error::BadRequest("no such audit API path");
  }
  QueryValues q = ParseQuery(raw_query);
  struct Field {
    const char* key;
    std::string* out;
  } fields[] = {{"user", &r.query.actor},         {"group", &r.query.group},         {"kind", &r.query.kind},
                {"verb", &r.query.verb},          {"resource", &r.query.resource},   {"namespace", &r.query.namespace_},
                {"name", &r.query.name},          {"decision", &r.query.decision},   {"approver", &r.query.approver},
                {"approval_id", &r.query.approval_id}, {"task", &r.query.task}, {"format", &r.format}};
  for (const auto& [k, v] : q.pairs()) {
    bool known = k == "since" || k == "until" || k == "limit" || k == "after_seq";
    for (auto& f : fields) {
      if (k == f.key) {
        *f.out = v;
        known = true;
      }
    }
    if (!known) return Error::BadRequest("unknown audit query parameter: " + k);
  }
  if (auto s = q.First("since")) {
    auto t = ParseTimeBound(*s, now_ms);
    if (!t) return t.error();
    r.query.since_ms = *t;
  }
  if (auto u = q.First("until")) {
    auto t = ParseTimeBound(*u, now_ms);
    if (!t) return t.error();
    r.query.until_ms = *t;
  }
  if (auto l = q.First("limit")) {
    try {
      std::size_t used = 0;
      long long n = std::stoll(*l, &used);
      if (used != l->size() || n < 1 || n > static_cast<long long>(limits::kAuditMaxQueryLimit)) throw 0;
      r.query.limit = static_cast<std::size_t>(n);
    } catch (...) {
      return Error::BadRequest("limit must be from 1 to " + std::to_string(limits::kAuditMaxQueryLimit));
    }
  }
  if (auto a = q.First("after_seq")) {
    std::size_t used = 0;
    long long n = -1;
    try {
      n = std::stoll(*a, &used);
    } catch (...) {
    }
    if (used != a->size() || n < 0) return Error::BadRequest("after_seq must be a chain position (0 or more)");
    r.after_seq = n;
  }
  if (r.format.empty()) r.format = r.after_seq >= 0 ? "jsonl" : "json";
  auto valid = ValidateAuditQuery(r);
  if (!valid) return valid.error();
  return r;
}

Result<bool> ValidateAuditQuery(AuditApiRequest& r) {
  auto one_of = [](const std::string& v, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed) {
      if (v == a) return true;
    }
    return false;
  };
  if (r.after_seq >= 0) {
    if (r.format != "jsonl") return Error::BadRequest("an export (after_seq) is JSON lines: format jsonl");
  } else if (r.show ? !one_of(r.format, {"json", "text", "k8s"}) : !one_of(r.format, {"json", "jsonl", "k8s", "table"})) {
    return Error::BadRequest("unsupported output format \"" + r.format + "\" (" +
                             (r.show ? "json, text, k8s" : "table, jsonl, json, k8s") + ")");
  }
  if (!r.query.decision.empty() && !one_of(r.query.decision, {"allow", "deny", "review"})) {
    return Error::BadRequest("unknown decision \"" + r.query.decision + "\" (allow, deny or review)");
  }
  if (!r.query.kind.empty() && !one_of(r.query.kind, {"human", "agent"})) {
    return Error::BadRequest("unknown kind \"" + r.query.kind + "\" (human or agent)");
  }
  if (auto slash = r.query.resource.find('/'); slash != std::string::npos) {
    r.query.subresource = r.query.resource.substr(slash + 1);
    r.query.resource.resize(slash);
    bool plain = !r.query.subresource.empty() && std::all_of(r.query.subresource.begin(), r.query.subresource.end(),
                                                              [](char c) { return c >= 'a' && c <= 'z'; });
    if (!plain || r.query.resource.empty()) {
      return Error::BadRequest("resource is RESOURCE or RESOURCE/SUBRESOURCE (pods/exec)");
    }
  }
  return true;
}

AuditApiResponse RunAuditApi(AuditStore& store, const AuditApiRequest& req) {
  if (req.recording) {
    auto r = LoadRecording(store, req.request_id, req.recording_dir);
    if (!r) return StatusResponse(r.error());
    bool cast = r->summary.value("format", "") == "asciicast-v2";
    return {200, cast ? "application/x-asciicast" : "application/x-ndjson", std::move(r->content)};
  }
  if (req.show) {
    auto entries = store.AuditByRequest(req.request_id);
    if (!entries) return StatusResponse(entries.error());
    AuditPair pair;
    bool found = false;
    for (auto& e : *entries) {
      if (e.index.phase == "decision") {
        pair.decision = e;
        found = true;
      } else {
        pair.result = e;
      }
    }
    if (!found) return StatusResponse(Error{404, "NotFound", "no audit record for request " + req.request_id});
    if (req.format == "text") return {200, "text/plain; charset=utf-8", AuditExplain(pair)};
    if (req.format == "k8s") return {200, "application/json", AuditK8sEvent(pair).dump()};
    return {200, "application/json", AuditPairJson(pair).dump()};
  }
  if (req.after_seq >= 0) {
    // Chain order, every entry: what a SIEM or a reviewer needs to read
    // the whole log and continue from where it stopped.
    std::size_t limit = std::clamp<std::size_t>(req.query.limit, 1, limits::kAuditMaxQueryLimit);
    auto entries = store.AuditRange(req.after_seq, limit);
    if (!entries) return StatusResponse(entries.error());
    std::string body;
    for (const auto& e : *entries) body += AuditEntryJson(e).dump() + "\n";
    return {200, "application/x-ndjson", body};
  }
  auto pairs = store.QueryAudit(req.query);
  if (!pairs) return StatusResponse(pairs.error());
  if (req.format == "table") return {200, "text/plain; charset=utf-8", AuditTable(*pairs)};
  if (req.format == "jsonl") {
    std::string body;
    for (const auto& p : *pairs) body += AuditPairJson(p).dump() + "\n";
    return {200, "application/x-ndjson", body};
  }
  nlohmann::json list;
  if (req.format == "k8s") {
    list["kind"] = "EventList";
    list["apiVersion"] = "audit.k8s.io/v1";
    list["items"] = nlohmann::json::array();
    for (const auto& p : *pairs) list["items"].push_back(AuditK8sEvent(p));
  } else {
    list["kind"] = "AuditRecordList";
    list["apiVersion"] = "kubegate.io/v1";
    list["items"] = nlohmann::json::array();
    for (const auto& p : *pairs) list["items"].push_back(AuditPairJson(p));
  }
  return {200, "application/json", list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace kubegate
