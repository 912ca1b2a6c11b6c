#include "approval/approval_api.h"

#include <sstream>

#include "classify/go_url.h"
#include "common/clock.h"
#include "common/json_fields.h"
#include "common/k8s_status.h"

namespace kubegate {
namespace {

ApprovalApiResponse Fail(const Error& e) { return {e.http_code, "application/json", StatusJson(e), std::nullopt}; }

std::string Minutes(std::int64_t ms) {
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  return std::to_string(ms / 1000) + "s";
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string ApproversText(const ReviewSpec& r) {
  std::vector<std::string> parts;
  if (!r.approver_users.empty()) parts.push_back("users " + Join(r.approver_users, ", "));
  if (!r.approver_groups.empty()) parts.push_back("groups " + Join(r.approver_groups, ", "));
  return Join(parts, "; ");
}

nlohmann::json GrantView(const Grant& g, std::int64_t now_ms) {
  return {{"id", g.id},
          {"user", g.user},
          {"holder", g.holder.ToJson()},
          {"description", DescribeGrant(g, now_ms)},
          {"rule", g.rule},
          {"approval_id", g.approval_id},
          {"scope", g.scope.ToJson()},
          {"expires", FormatRfc3339(g.expires_ms)},
          {"uses_left", g.uses_left},
          {"revoked", g.revoked},
          {"revoked_by", g.revoked_by}};
}

std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

bool MaySee(const ApprovalRequest& r, const Identity& caller, bool auditor) {
  return auditor || r.requester == caller.user || ApprovalService::ListedApprover(r.review, caller);
}

std::string Duration(std::int64_t ms) {
  if (ms <= 0) return "0s";
  if (ms >= 3'600'000) return std::to_string(ms / 3'600'000) + "h" + (ms % 3'600'000 >= 60'000 ? std::to_string(ms % 3'600'000 / 60'000) + "m" : "");
  if (ms >= 60'000) return std::to_string(ms / 60'000) + "m";
  return std::to_string((ms + 999) / 1000) + "s";
}

}  // namespace

std::string DescribeGrant(const Grant& g, std::int64_t now_ms) {
  std::string out = g.id + ": " + g.holder.user + " (" + (g.holder.kind.empty() ? "?" : g.holder.kind) + ", " +
                    (g.holder.method.empty() ? "?" : g.holder.method) + ") may " + g.scope.Describe();
  if (g.revoked) return out + "; revoked by " + g.revoked_by;
  if (now_ms >= g.expires_ms) return out + "; expired";
  out += "; " + Duration(g.expires_ms - now_ms) + " left";
  if (g.uses_left == 0) return out + ", used up";
  if (g.uses_left > 0) out += ", " + std::to_string(g.uses_left) + (g.uses_left == 1 ? " use" : " uses") + " left";
  return out + " (rule " + g.rule + ", approval " + g.approval_id + ")";
}

bool IsApprovalApiPath(std::string_view path) {
  for (std::string_view prefix : {kApprovalApiPrefix, kGrantApiPrefix}) {
    if (path == prefix || (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix &&
                           path[prefix.size()] == '/')) {
      return true;
    }
  }
  return false;
}

std::string DescribeApproval(const ApprovalRequest& r, std::int64_t now_ms) {
  std::ostringstream o;
  const nlohmann::json& req = r.request;
  const nlohmann::json info = req.value("info", nlohmann::json::object());
  o << "Request " << r.id << " — " << ApprovalStateName(r.state) << "\n";
  o << "  who:      " << r.requester << " (" << (r.requester_kind == "agent" ? "an agent" : "a person");
  if (!r.requester_groups.empty()) o << "; groups " << Join(r.requester_groups, ", ");
  o << ")\n";
  if (!r.requester_task.empty()) o << "  task:     " << r.requester_task << " (a per-task token; the grant ends with it)\n";
  if (!req.value("kubectl_command", std::string()).empty()) o << "  kubectl:  " << req.value("kubectl_command", "") << "\n";
  std::string verb = info.value("verb", "");
  std::string what = info.value("resource", "");
  if (!info.value("subresource", std::string()).empty()) what += "/" + info.value("subresource", "");
  if (!info.value("name", std::string()).empty()) what += " \"" + info.value("name", "") + "\"";
  o << "  action:   " << verb << " " << (what.empty() ? info.value("path", "") : what);
  std::string ns = info.value("namespace", "");
  // A Namespace object's own namespace is itself (as the API server reads it).
  bool the_namespace_itself = info.value("resource", "") == "namespaces" && info.value("subresource", "").empty();
  o << (ns.empty() || the_namespace_itself ? " (cluster-wide)" : " in namespace " + ns) << "\n";
  if (info.contains("exec")) {
    const auto& ex = info["exec"];
    o << "  command:  " << Join(ex.value("command", std::vector<std::string>{}), " ");
    if (!ex.value("container", std::string()).empty()) o << "   (container " << ex.value("container", "") << ")";
    if (ex.value("tty", false)) o << "   interactive";
    o << "\n";
  }
  if (req.contains("body_summary")) o << "  body:     " << req.value("body_summary", "") << "\n";
  if (!r.dry_run.is_null()) o << "  dry run:  " << r.dry_run.value("summary", "") << "\n";
  o << "  request:  " << req.value("method", "") << " " << req.value("target", "") << "\n";
  if (!r.message.empty()) o << "  why:      " << r.message << "\n";
  o << "  rule:     " << r.rule << ": needs " << r.review.approvals << " approval" << (r.review.approvals > 1 ? "s" : "")
    << " from " << ApproversText(r.review) << (r.review.allow_self_approval ? "" : "; not by the requester") << "\n";
  if (r.state == ApprovalState::kPending) {
    o << "  waiting:  " << (now_ms - r.created_ms) / 1000 << "s; expires in " << std::max<std::int64_t>(0, r.expires_ms - now_ms) / 1000
      << "s" << (r.review.hold ? " (the caller is held and waiting)" : " (the caller re-runs the command once approved)")
      << "\n";
  }
  for (const auto& v : r.votes) {
    o << "  approved by " << v.user << " at " << FormatRfc3339(v.at_ms) << (v.reason.empty() ? "" : ": " + v.reason) << "\n";
  }
  if (r.state == ApprovalState::kDenied) o << "  denied by " << r.decided_by << ": " << r.reason << "\n";
  if (r.state == ApprovalState::kExpired || r.state == ApprovalState::kWithdrawn || r.state == ApprovalState::kAbandoned) {
    o << "  " << r.reason << "\n";
  }
  o << "  covers:   " << r.scope.Describe() << "\n";
  if (r.asked > 1) {
    o << "  asked:    " << r.asked << " identical requests wait on this decision; each one forwarded takes its own use "
      << "of the grant\n";
  }
  if (!r.grant_id.empty()) o << "  grant:    " << r.grant_id << "\n";
  if (r.state == ApprovalState::kPending) {
    o << "\n  approve:  kubectl gate approve " << r.id << " [--reason TEXT] [--for 15m] [--scope any-command|any-name|reads]\n"
      << "  deny:     kubectl gate deny " << r.id << " --reason TEXT\n";
  }
  return o.str();
}

namespace {

// "Kind name" of an object (either may be missing); "" when neither is there.
std::string KindAndName(const nlohmann::json& obj) {
  std::string kind = StringField(obj, "kind");
  std::string name = StringField(Field(obj, "metadata"), "name");
  return kind + (kind.empty() || name.empty() ? "" : " ") + name;
}

}  // namespace

// `redacted` comes from RedactRequestBody, but its "json" is the caller's:
// every field is read without trusting its type.
std::string SummarizeRequestBody(const nlohmann::json& redacted) {
  auto size = IntField(redacted, "bytes");
  std::string bytes = std::to_string(size ? *size : 0) + " bytes";
  const nlohmann::json& json = Field(redacted, "json");
  if (json.is_null()) {
    std::string omitted = StringField(redacted, "omitted");
    return bytes + " (" + (omitted.empty() ? "not shown" : omitted) + ")";
  }
  std::string head;
  if (json.is_object()) {
    if (std::string what = KindAndName(json); !what.empty()) head = what + ": ";
  } else if (json.is_array()) {
    head = "JSON patch of " + std::to_string(json.size()) + " operation" + (json.size() == 1 ? "" : "s") + ": ";
  }
  std::string text = json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kBodySummaryChars) text = text.substr(0, kBodySummaryChars) + "... (" + bytes + ")";
  return head + text;
}

// `body` is the API server's answer: read without trusting field types.
std::string DescribeDryRunAnswer(int status, std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (status >= 200 && status < 300) {
    std::string what = KindAndName(j);
    return "would succeed (HTTP " + std::to_string(status) + (what.empty() ? "" : ", " + what) + ")";
  }
  std::string out = "would fail: HTTP " + std::to_string(status);
  if (StringField(j, "kind") == "Status") {
    if (std::string reason = StringField(j, "reason"); !reason.empty()) out += " " + reason;
    if (std::string message = StringField(j, "message"); !message.empty()) out += ": " + message;
  }
  return out;
}

std::string PendingInstructions(const ApprovalRequest& r) {
  std::ostringstream o;
  o << "kubegate: this request needs approval (rule \"" << r.rule << "\"); nothing was done.\n";
  if (!r.message.empty()) o << r.message << "\n";
  o
    << "Request " << r.id << " is pending: " << r.review.approvals << " approval" << (r.review.approvals > 1 ? "s" : "")
    << " needed from " << ApproversText(r.review) << ", within " << Minutes(r.review.max_wait_ms) << ".\n"
    << "An approver runs:  kubectl gate approve " << r.id << "\n"
    << "Once it is approved, run the same command again.";
  return o.str();
}

ApprovalApiResponse RunApprovalApi(ApprovalService& svc, const Identity& caller, bool auditor, std::string_view method,
                                   std::string_view path, std::string_view raw_query, std::string_view body) {
  QueryValues q = ParseQuery(raw_query);
  std::string format = q.First("format").value_or("json");
  if (format != "json" && format != "text") return Fail(Error::BadRequest("unknown format \"" + format + "\" (json or text)"));
  std::int64_t now = svc.clock().NowMillis();
  nlohmann::json in = body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body, nullptr, false);
  if (!in.is_object()) return Fail(Error::BadRequest("the request body must be a JSON object"));
  auto str = [&](const char* k) { return in.contains(k) && in[k].is_string() ? in[k].get<std::string>() : std::string(); };

  std::string p(path);
  bool grants = p.rfind(std::string(kGrantApiPrefix), 0) == 0;
  std::string rest = p.substr(grants ? kGrantApiPrefix.size() : kApprovalApiPrefix.size());
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  std::string id = rest.substr(0, rest.find('/'));
  std::string action = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);

  if (grants) {
    if (id.empty()) {
      if (method != "GET") return Fail(Error{405, "MethodNotAllowed", "GET the grant list"});
      auto list = svc.ListGrants(q.First("all").value_or("") != "true");
      if (!list) return Fail(list.error());
      nlohmann::json items = nlohmann::json::array();
      std::string text;
      for (const auto& g : *list) {
        if (!auditor && g.user != caller.user) {
          auto approval = svc.Get(g.approval_id);
          if (!approval || !MaySee(*approval, caller, false)) continue;
        }
        items.push_back(GrantView(g, now));
        text += DescribeGrant(g, now) + "\n";
      }
      if (format == "text") {
        return {200, "text/plain; charset=utf-8", text.empty() ? "No grants.\n" : text, std::nullopt};
      }
      return {200, "application/json", Dump({{"kind", "GrantList"}, {"items", items}}), std::nullopt};
    }
    if (action != "revoke" || method != "POST") return Fail(Error{405, "MethodNotAllowed", "POST .../grants/ID/revoke"});
    auto g = svc.Revoke(id, caller, str("reason"));
    if (!g) return Fail(g.error());
    if (format == "text") return {200, "text/plain; charset=utf-8", "revoked " + DescribeGrant(*g, now) + "\n", std::nullopt};
    return {200, "application/json", Dump(GrantView(*g, now)), std::nullopt};
  }

  if (id.empty()) {
    if (method != "GET") return Fail(Error{405, "MethodNotAllowed", "GET the approval list"});
    std::optional<ApprovalState> state;
    if (auto s = q.First("state")) {
      for (auto st : {ApprovalState::kPending, ApprovalState::kApproved, ApprovalState::kDenied, ApprovalState::kExpired,
                      ApprovalState::kWithdrawn, ApprovalState::kAbandoned}) {
        if (*s == ApprovalStateName(st)) state = st;
      }
      if (!state) return Fail(Error::BadRequest("unknown state " + *s));
    }
    auto list = svc.List(state);
    if (!list) return Fail(list.error());
    std::erase_if(*list, [&](const ApprovalRequest& r) { return !MaySee(r, caller, auditor); });
    if (format == "text") {
      std::ostringstream o;
      if (list->empty()) o << "No " << (state ? std::string(ApprovalStateName(*state)) + " " : "") << "approval requests.\n";
      for (const auto& r : *list) o << DescribeApproval(r, now) << "\n";
      return {200, "text/plain; charset=utf-8", o.str(), std::nullopt};
    }
    nlohmann::json items = nlohmann::json::array();
    for (const auto& r : *list) items.push_back(r.ToJson());
    return {200, "application/json", Dump({{"kind", "ApprovalRequestList"}, {"items", items}}), std::nullopt};
  }
  if (action.empty()) {
    if (method != "GET") return Fail(Error{405, "MethodNotAllowed", "GET one approval request"});
    auto r = svc.Get(id);
    if (!r) return Fail(r.error());
    if (!MaySee(*r, caller, auditor)) return Fail(Error{404, "NotFound", "no approval request " + id});
    if (format == "text") return {200, "text/plain; charset=utf-8", DescribeApproval(*r, now), std::nullopt};
    return {200, "application/json", Dump(r->ToJson()), std::nullopt};
  }
  if (method != "POST") return Fail(Error{405, "MethodNotAllowed", "POST to approve or deny"});
  Result<ApprovalRequest> r = Error::BadRequest("unknown action " + action + " (approve or deny)");
  if (action == "approve") {
    ApproveOptions o;
    o.reason = str("reason");
    if (std::string f = str("for"); !f.empty()) {
      auto ms = ParseDurationMillis(f);
      if (!ms) return Fail(ms.error());
      o.grant_ms = *ms;
    }
    if (in.contains("scope")) {
      // "exact" is the default, said explicitly; anything unknown or empty
      // is refused rather than read as exact.
      const char* kScopes = "exact, any-command, any-name, reads";
      if (!in["scope"].is_array() || in["scope"].empty()) {
        return Fail(Error::BadRequest(std::string("scope is a non-empty list of: ") + kScopes));
      }
      for (const auto& s : in["scope"]) {
        std::string v = s.is_string() ? s.get<std::string>() : "";
        if (v == "exact") {
        } else if (v == "any-command") {
          o.any_command = true;
        } else if (v == "any-name") {
          o.any_name = true;
        } else if (v == "reads") {
          o.reads = true;
        } else {
          return Fail(Error::BadRequest("unknown scope \"" + v + "\" (" + kScopes + ")"));
        }
      }
    }
    r = svc.Approve(id, caller, o);
  } else if (action == "deny") {
    r = svc.Deny(id, caller, str("reason"));
  }
  if (!r) return Fail(r.error());
  ApprovalApiResponse out{200, "application/json", Dump(r->ToJson()), std::nullopt};
  if (format == "text") {
    out.content_type = "text/plain; charset=utf-8";
    out.body = DescribeApproval(*r, now);
  }
  if (r->state != ApprovalState::kPending) out.decided = *r;
  return out;
}

}  // namespace kubegate
