#include "audit/audit_record.h"

#include "audit/audit_entry.h"
#include "audit/canonical_json.h"
#include "common/clock.h"
#include "common/digest.h"
#include "common/limits.h"

namespace kubegate {
namespace {

void RedactSecretFields(nlohmann::json& obj) {
  for (const char* field : {"data", "stringData"}) {
    auto it = obj.find(field);
    if (it == obj.end() || !it->is_object()) continue;
    for (auto& [_, v] : it->items()) v = "<redacted>";
  }
}

// Every object of kind Secret, at any depth (Lists, kubectl apply's
// last-applied annotation is a string and is dropped below).
void RedactSecrets(nlohmann::json& j) {
  if (j.is_object()) {
    if (auto k = j.find("kind"); k != j.end() && k->is_string() && *k == "Secret") {
      RedactSecretFields(j);
      if (auto md = j.find("metadata"); md != j.end() && md->is_object()) {
        if (auto ann = md->find("annotations"); ann != md->end() && ann->is_object()) {
          auto last = ann->find("kubectl.kubernetes.io/last-applied-configuration");
          if (last != ann->end()) *last = "<redacted>";
        }
      }
    }
    for (auto& [_, v] : j.items()) RedactSecrets(v);
  } else if (j.is_array()) {
    for (auto& v : j) RedactSecrets(v);
  }
}

}  // namespace

nlohmann::json RedactRequestBody(std::string_view resource, std::string_view content_type, std::string_view body) {
  nlohmann::json out;
  out["bytes"] = body.size();
  out["sha256"] = Sha256Hex(body);
  bool json_like = content_type.find("json") != std::string_view::npos ||
                   content_type.find("apply-patch+yaml") != std::string_view::npos;
  nlohmann::json parsed = json_like ? nlohmann::json::parse(body, nullptr, false) : nlohmann::json();
  if (!json_like || parsed.is_discarded()) {
    out["omitted"] = "not JSON (" + std::string(content_type) + ")";
    return out;
  }
  if (resource == "secrets") {
    // A patch to a Secret has no kind; its data maps are at the top.
    if (parsed.is_object()) RedactSecretFields(parsed);
    if (parsed.is_array()) {  // JSON patch: [{"op":..,"path":"/data/x","value":..}]
      for (auto& op : parsed) {
        if (op.is_object() && op.contains("value")) op["value"] = "<redacted>";
      }
    }
  }
  RedactSecrets(parsed);
  std::string text = parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > limits::kAuditMaxStoredBody) {
    out["omitted"] = "larger than " + std::to_string(limits::kAuditMaxStoredBody) + " bytes";
    return out;
  }
  out["json"] = std::move(parsed);
  return out;
}

namespace {

// The index copies of a record, taken from the facts it was written from.
// Equal to DeriveIndex(canonical) (the tests and the audit_record fuzz
// target check it) unless a string held invalid UTF-8: the canonical text
// has it replaced, so the index is then read back from that text, as
// verification will read it.
Result<AuditEntry> Finish(std::string canonical, AuditIndex index) {
  AuditEntry e;
  e.canonical = std::move(canonical);
  if (e.canonical.find("\xEF\xBF\xBD") != std::string::npos) {
    auto derived = DeriveIndex(e.canonical);
    if (!derived) return derived.error();
    e.index = std::move(*derived);
  } else {
    e.index = std::move(index);
  }
  return e;
}

// Times FormatRfc3339Millis writes and ParseRfc3339 reads back unchanged:
// 1970 to 9999.
bool RoundTrips(std::int64_t ms) { return ms >= 0 && ms < 253'402'300'800'000; }

CanonicalObject RequestObject(const DecisionFacts& f) {
  CanonicalObject req;
  if (const RequestInfo* i = f.info) {
    req.AddBool("isResourceRequest", i->is_resource_request);
    req.Add("path", i->path);
    req.Add("verb", i->verb);
    req.Add("apiPrefix", i->api_prefix);
    req.Add("apiGroup", i->api_group);
    req.Add("apiVersion", i->api_version);
    req.Add("namespace", i->namespace_);
    req.Add("resource", i->resource);
    req.Add("subresource", i->subresource);
    req.Add("name", i->name);
    req.AddList("parts", i->parts);
    req.AddBool("dryRun", i->dry_run);
    if (i->stream != StreamKind::kNone) req.Add("stream", StreamKindName(i->stream));
    if (i->exec) {
      CanonicalObject exec;
      exec.Add("container", i->exec->container);
      exec.AddList("command", i->exec->command);
      exec.AddBool("stdin", i->exec->stdin_);
      exec.AddBool("stdout", i->exec->stdout_);
      exec.AddBool("stderr", i->exec->stderr_);
      exec.AddBool("tty", i->exec->tty);
      req.AddObject("exec", exec);
    }
    if (!i->ports.empty()) req.AddList("ports", i->ports);
  }
  req.Add("method", f.method);
  req.Add("target", f.target);
  if (!f.user_agent.empty()) req.Add("userAgent", f.user_agent);
  return req;
}

}  // namespace

// The decision record's layout. RequestInfoJson (classify/) writes the same
// "request" members for `kubegate classify`; the record keeps its own copy
// here so that it is written without a DOM. audit_record_reference.h holds
// the layout as it was built with nlohmann before, and the tests compare.
Result<AuditEntry> BuildDecisionEntry(const DecisionFacts& f) {
  if (f.request_id.empty()) return Error::BadRequest("audit record lacks request_id or phase");
  AuditIndex x;
  x.request_id = f.request_id;
  x.phase = "decision";
  x.time_ms = f.received_ms;

  CanonicalObject j;
  j.AddInt("v", 1);
  j.Add("phase", "decision");
  j.Add("request_id", f.request_id);
  std::string received = FormatRfc3339Millis(f.received_ms);
  j.Add("received", received);
  CanonicalObject id;
  id.Add("source", f.source);
  if (f.who) {
    id.Add("user", f.who->user);
    id.AddList("groups", f.who->groups);
    id.Add("kind", IdentityKindName(f.who->kind));
    id.Add("auth", AuthMethodName(f.who->method));
    if (!f.who->auth_source.empty()) id.Add("issuer", f.who->auth_source);
    if (!f.who->task.empty()) id.Add("task", f.who->task);
    // A token issued at runtime (task or static): which one.
    if (!f.who->credential_id.empty()) id.Add("credential_id", f.who->credential_id);
    x.actor = f.who->user;
    x.kind = IdentityKindName(f.who->kind);
    x.task = f.who->task;
    x.groups = f.who->groups;
  } else {
    id.Add("user", "");
    id.Add("auth", "none");
  }
  j.AddObject("identity", id);
  j.AddObject("request", RequestObject(f));
  if (f.info) {
    x.verb = f.info->verb;
    x.api_group = f.info->api_group;
    x.resource = f.info->resource;
    x.namespace_ = f.info->namespace_;
    x.name = f.info->name;
  }
  if (!f.kubectl_command.empty() || !f.kubectl_session.empty()) {
    CanonicalObject k;
    k.Add("command", f.kubectl_command);
    k.Add("session", f.kubectl_session);
    j.AddObject("kubectl", k);
  }
  CanonicalObject d;
  d.Add("action", f.action);
  d.Add("rule", f.rule);
  d.Add("message", f.message);
  j.AddObject("decision", d);
  x.decision = f.action;
  j.AddJson("approval", f.approval);
  IndexApproval(f.approval, x);
  if (!f.identity_change.is_null()) j.AddJson("identity_change", f.identity_change);
  if (!f.impersonated.empty()) {
    CanonicalObject up;
    for (const auto& [name, value] : f.impersonated) up.Add(name, value);
    j.AddObject("upstream_identity", up);
  }
  if (!f.recording_id.empty()) j.Add("recording_id", f.recording_id);
  if (!f.namespace_labels.is_null()) j.AddJson("namespace_labels", f.namespace_labels);
  if (f.request_body) j.AddJson("request_body", *f.request_body);
  std::string canonical = j.Text();
  if (!RoundTrips(f.received_ms)) return MakeEntry(nlohmann::json::parse(canonical));
  return Finish(std::move(canonical), std::move(x));
}

Result<AuditEntry> BuildResultEntry(const ResultFacts& f) {
  if (f.request_id.empty()) return Error::BadRequest("audit record lacks request_id or phase");
  CanonicalObject j;
  j.AddInt("v", 1);
  j.Add("phase", "result");
  j.Add("request_id", f.request_id);
  std::string completed = FormatRfc3339Millis(f.completed_ms);
  j.Add("completed", completed);
  j.AddInt("status", f.status);
  j.AddUInt("bytes_in", f.bytes_in);
  j.AddUInt("bytes_out", f.bytes_out);
  j.AddInt("duration_ms", f.duration_ms);
  if (!f.error.empty()) j.Add("error", f.error);
  if (f.recording) j.AddJson("recording", *f.recording);
  std::string canonical = j.Text();
  if (!RoundTrips(f.completed_ms)) return MakeEntry(nlohmann::json::parse(canonical));
  AuditIndex x;
  x.request_id = f.request_id;
  x.phase = "result";
  x.time_ms = f.completed_ms;
  return Finish(std::move(canonical), std::move(x));
}

}  // namespace kubegate
