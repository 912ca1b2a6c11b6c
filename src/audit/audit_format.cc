#include "audit/audit_format.h"

#include <sstream>

#include "common/clock.h"

namespace kubegate {
namespace {

nlohmann::json Parse(const AuditEntry& e) {
  nlohmann::json j = nlohmann::json::parse(e.canonical, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

std::string S(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_null()) return "";
  return it->dump();
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string Target(const AuditIndex& x, const nlohmann::json& req) {
  if (x.resource.empty()) return S(req, "path");
  std::string t = x.resource;
  std::string sub = S(req, "subresource");
  if (!sub.empty()) t += "/" + sub;
  if (!x.api_group.empty()) t = x.api_group + ":" + t;
  return t;
}

// A column of width w: at most w - 1 characters (cut with "~"), then at
// least one space, so neighbouring columns never run together.
std::string Pad(std::string s, std::size_t w) {
  if (s.size() > w - 1) s = s.substr(0, w - 2) + "~";
  s.resize(w, ' ');
  return s;
}

// kubectl's own audit verbs for the HTTP methods (apiserver's audit uses
// RequestInfo.Verb, which is what kubegate records).
std::string StageOf(const AuditPair& p) { return p.result ? "ResponseComplete" : "RequestReceived"; }

}  // namespace

std::string AuditTable(const std::vector<AuditPair>& pairs) {
  std::ostringstream out;
  out << Pad("TIME", 25) << Pad("REQUEST ID", 24) << Pad("USER", 16) << Pad("KIND", 6) << Pad("VERB", 10)
      << Pad("RESOURCE", 22) << Pad("NAMESPACE/NAME", 30) << Pad("DECISION", 9) << Pad("RULE", 22) << "STATUS\n";
  for (const auto& p : pairs) {
    const AuditIndex& x = p.decision.index;
    nlohmann::json d = Parse(p.decision);
    std::string where = x.namespace_.empty() ? x.name : x.namespace_ + (x.name.empty() ? "" : "/" + x.name);
    std::string status = "-";
    if (p.result) status = S(Parse(*p.result), "status");
    out << Pad(FormatRfc3339Millis(x.time_ms), 25) << Pad(x.request_id, 24) << Pad(x.actor.empty() ? "-" : x.actor, 16)
        << Pad(x.kind.empty() ? "-" : x.kind, 6) << Pad(x.verb.empty() ? "-" : x.verb, 10)
        << Pad(Target(x, d.value("request", nlohmann::json::object())), 22) << Pad(where.empty() ? "-" : where, 30)
        << Pad(x.decision, 9) << Pad(S(d.value("decision", nlohmann::json::object()), "rule"), 22) << status << "\n";
  }
  return out.str();
}

nlohmann::json AuditEntryJson(const AuditEntry& e) {
  return {{"seq", e.seq}, {"prev_hash", e.prev_hash}, {"hash", e.hash}, {"phase", e.index.phase},
          {"request_id", e.index.request_id}, {"record", Parse(e)}};
}

nlohmann::json AuditPairJson(const AuditPair& p) {
  nlohmann::json j;
  j["seq"] = p.decision.seq;
  j["hash"] = p.decision.hash;
  j["decision"] = Parse(p.decision);
  j["result"] = p.result ? Parse(*p.result) : nlohmann::json();
  if (p.result) {
    j["result_seq"] = p.result->seq;
    j["result_hash"] = p.result->hash;
  }
  return j;
}

nlohmann::json AuditK8sEvent(const AuditPair& p) {
  nlohmann::json d = Parse(p.decision);
  nlohmann::json res = p.result ? Parse(*p.result) : nlohmann::json::object();
  nlohmann::json id = d.value("identity", nlohmann::json::object());
  nlohmann::json req = d.value("request", nlohmann::json::object());
  nlohmann::json dec = d.value("decision", nlohmann::json::object());
  nlohmann::json appr = d.value("approval", nlohmann::json::object());
  nlohmann::json e;
  e["kind"] = "Event";
  e["apiVersion"] = "audit.k8s.io/v1";
  e["level"] = "Metadata";
  e["auditID"] = p.decision.index.request_id;
  e["stage"] = StageOf(p);
  e["requestURI"] = S(req, "target");
  e["verb"] = S(req, "verb");
  nlohmann::json user;
  user["username"] = S(id, "user");
  if (id.contains("groups")) user["groups"] = id["groups"];
  user["extra"] = {{"kubegate.io/kind", {S(id, "kind")}}, {"kubegate.io/auth", {S(id, "auth")}}};
  e["user"] = user;
  e["sourceIPs"] = nlohmann::json::array({S(id, "source")});
  if (!S(req, "userAgent").empty()) e["userAgent"] = S(req, "userAgent");
  if (req.value("isResourceRequest", false)) {
    nlohmann::json ref;
    ref["resource"] = S(req, "resource");
    if (!S(req, "namespace").empty()) ref["namespace"] = S(req, "namespace");
    if (!S(req, "name").empty()) ref["name"] = S(req, "name");
    ref["apiGroup"] = S(req, "apiGroup");
    ref["apiVersion"] = S(req, "apiVersion");
    if (!S(req, "subresource").empty()) ref["subresource"] = S(req, "subresource");
    e["objectRef"] = ref;
  }
  if (p.result) e["responseStatus"] = {{"metadata", nlohmann::json::object()}, {"code", res.value("status", 0)}};
  e["requestReceivedTimestamp"] = S(d, "received");
  e["stageTimestamp"] = p.result ? S(res, "completed") : S(d, "received");
  nlohmann::json ann;
  ann["kubegate.io/decision"] = S(dec, "action");
  ann["kubegate.io/rule"] = S(dec, "rule");
  if (!S(dec, "message").empty()) ann["kubegate.io/message"] = S(dec, "message");
  if (!S(appr, "id").empty()) ann["kubegate.io/approval-id"] = S(appr, "id");
  if (!p.decision.index.approvers.empty()) ann["kubegate.io/approvers"] = Join(p.decision.index.approvers, ",");
  if (appr.contains("scope")) ann["kubegate.io/scope"] = appr["scope"].dump();
  if (!S(appr, "grant_id").empty()) ann["kubegate.io/grant-id"] = S(appr, "grant_id");
  if (d.contains("kubectl")) ann["kubegate.io/kubectl-command"] = S(d["kubectl"], "command");
  if (!S(d, "recording_id").empty()) ann["kubegate.io/recording-id"] = S(d, "recording_id");
  ann["kubegate.io/chain-seq"] = std::to_string(p.decision.seq);
  ann["kubegate.io/chain-hash"] = p.decision.hash;
  e["annotations"] = ann;
  return e;
}

std::string AuditExplain(const AuditPair& p) {
  nlohmann::json d = Parse(p.decision);
  nlohmann::json id = d.value("identity", nlohmann::json::object());
  nlohmann::json req = d.value("request", nlohmann::json::object());
  nlohmann::json dec = d.value("decision", nlohmann::json::object());
  nlohmann::json appr = d.value("approval", nlohmann::json::object());
  const AuditIndex& x = p.decision.index;
  std::ostringstream o;
  o << "Request " << x.request_id << ", received " << S(d, "received") << "\n\n";
  o << "Who acted\n";
  if (x.actor.empty()) {
    o << "  An unauthenticated caller from " << S(id, "source") << ".\n";
  } else {
    o << "  " << x.actor << " (" << (x.kind == "agent" ? "an agent" : "a person") << ", authenticated by "
      << S(id, "auth") << ", from " << S(id, "source") << ")";
    if (!x.groups.empty()) o << ", groups: " << Join(d["identity"].value("groups", std::vector<std::string>{}), ", ");
    o << ".\n";
    if (d.contains("upstream_identity")) {
      o << "  The cluster saw the request as " << S(d["upstream_identity"], "Impersonate-User")
        << " (impersonated by kubegate).\n";
    }
  }
  o << "\nWhat was asked\n";
  if (d.contains("kubectl") && !S(d["kubectl"], "command").empty()) {
    o << "  kubectl command: " << S(d["kubectl"], "command") << "\n";
  }
  o << "  " << S(req, "method") << " " << S(req, "target") << "\n";
  if (!x.verb.empty()) {
    o << "  verb " << x.verb;
    if (!x.resource.empty()) {
      o << " on " << Target(x, req);
      if (!x.name.empty()) o << " \"" << x.name << "\"";
      o << (x.namespace_.empty() ? " (cluster-scoped or all namespaces)" : " in namespace " + x.namespace_);
    }
    if (req.value("dryRun", false)) o << ", dry run (nothing persisted)";
    o << "\n";
  }
  if (req.contains("exec")) {
    auto& ex = req["exec"];
    o << "  command in container " << S(ex, "container") << ": "
      << Join(ex.value("command", std::vector<std::string>{}), " ") << (ex.value("tty", false) ? " (interactive tty)" : "")
      << "\n";
  }
  if (d.contains("request_body")) o << "  request body: " << d["request_body"].dump() << "\n";
  o << "\nDid it need approval, and why\n";
  std::string action = S(dec, "action");
  std::string rule = S(dec, "rule");
  if (action == "allow" && S(appr, "id").empty()) {
    o << "  No. Allowed by rule \"" << rule << "\".\n";
  } else if (action == "deny") {
    o << "  Denied by rule \"" << rule << "\": " << S(dec, "message") << "\n";
  } else {
    o << "  Yes. Rule \"" << rule << "\" requires review" << (S(dec, "message").empty() ? "" : ": " + S(dec, "message"))
      << ".\n";
  }
  if (d.contains("namespace_labels")) o << "  Decided with the namespace's labels " << d["namespace_labels"].dump() << ".\n";
  o << "\nWho approved, and within what scope\n";
  if (S(appr, "id").empty()) {
    o << "  No approval was involved.\n";
  } else {
    o << "  Approval " << S(appr, "id") << ".\n";
    for (const auto& a : appr.value("approvers", nlohmann::json::array())) {
      o << "  Approved by " << S(a, "user") << " at " << S(a, "at") << (S(a, "reason").empty() ? "" : ": " + S(a, "reason"))
        << "\n";
    }
    // The outcome of the review, whatever it was.
    const std::string state = S(appr, "state");
    const std::string decided_by = S(appr, "decided_by");
    const std::string why = S(appr, "reason");
    if (state == "approved") {
      o << "  Outcome: approved" << (decided_by.empty() ? "" : " (decided by " + decided_by + ")") << ".\n";
    } else if (state == "denied") {
      o << "  Outcome: DENIED by " << (decided_by.empty() ? "an approver" : decided_by) << ": "
        << (why.empty() ? "no reason given" : why) << ". Nothing was forwarded.\n";
    } else if (state == "expired") {
      o << "  Outcome: nobody decided within the wait limit; the request expired undecided. Nothing was forwarded.\n";
    } else if (state == "withdrawn") {
      o << "  Outcome: withdrawn" << (why.empty() ? "" : " (" + why + ")") << ". Nothing was forwarded.\n";
    } else if (state == "abandoned") {
      o << "  Outcome: abandoned" << (why.empty() ? "" : " (" + why + ")") << ". Nothing was forwarded.\n";
    } else if (state == "pending") {
      o << "  Outcome: still pending when this record was written; the caller was told how to ask for approval "
           "(see the records of later requests under approval " << S(appr, "id") << ").\n";
    }
    if (appr.contains("scope")) o << "  Scope: " << appr["scope"].dump() << "\n";
    if (!S(appr, "grant_id").empty()) o << "  Used grant " << S(appr, "grant_id") << "\n";
    if (appr.contains("within_scope")) {
      o << "  The action " << (appr["within_scope"].get<bool>() ? "stayed inside" : "went OUTSIDE") << " that scope.\n";
    }
  }
  o << "\nWhat happened\n";
  if (p.result) {
    nlohmann::json r = Parse(*p.result);
    int status = r.value("status", 0);
    o << "  Completed " << S(r, "completed") << " with HTTP status " << status;
    if (status == 101) o << " (a streaming session)";
    o << "; " << r.value("bytes_in", 0) << " bytes in, " << r.value("bytes_out", 0) << " bytes out, "
      << r.value("duration_ms", 0) << " ms.\n";
    if (!S(r, "error").empty()) o << "  kubegate answered instead of the cluster: " << S(r, "error") << "\n";
  } else {
    o << "  No result was recorded (still running, or the gateway stopped before it completed).\n";
  }
  if (!S(d, "recording_id").empty()) {
    nlohmann::json rec = p.result ? Parse(*p.result).value("recording", nlohmann::json()) : nlohmann::json();
    if (rec.is_object()) {
      o << "  Session recording " << S(rec, "file") << " (" << S(rec, "format") << ", sha256 " << S(rec, "sha256")
        << "): " << rec.value("stdin_bytes", 0) << " bytes of stdin (" << S(rec, "stdin") << "), "
        << rec.value("stdout_bytes", 0) << " of stdout, " << rec.value("stderr_bytes", 0) << " of stderr";
      if (rec.contains("exit_code")) o << "; exit status " << rec["exit_code"].dump();
      if (!S(rec, "ended_by").empty()) o << "; " << S(rec, "ended_by");
      o << ".\n  Replay it: kubegate replay " << x.request_id << " --config CONFIG\n";
    } else {
      o << "  Session recording " << S(d, "recording_id") << ": not finished, or no session was opened.\n";
    }
  }
  o << "\nTamper evidence\n";
  o << "  Chain position " << p.decision.seq << ", hash " << p.decision.hash << "\n";
  if (p.result) o << "  Result at chain position " << p.result->seq << ", hash " << p.result->hash << "\n";
  o << "  In the cluster's own audit log this request carries impersonatedUser.extra[\"kubegate-request-id\"] = [\""
    << x.request_id << "\"].\n";
  return o.str();
}

}  // namespace kubegate
