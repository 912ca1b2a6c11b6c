#include "audit/audit_record.h"

#include "classify/request_info_json.h"
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

nlohmann::json DecisionRecord(const DecisionFacts& f) {
  nlohmann::json j;
  j["v"] = 1;
  j["phase"] = "decision";
  j["request_id"] = f.request_id;
  j["received"] = FormatRfc3339Millis(f.received_ms);
  nlohmann::json id;
  id["source"] = f.source;
  if (f.who) {
    id["user"] = f.who->user;
    id["groups"] = f.who->groups;
    id["kind"] = IdentityKindName(f.who->kind);
    id["auth"] = AuthMethodName(f.who->method);
    if (!f.who->auth_source.empty()) id["issuer"] = f.who->auth_source;
    if (!f.who->task.empty()) id["task"] = f.who->task;
    // A token issued at runtime (task or static): which one.
    if (!f.who->credential_id.empty()) id["credential_id"] = f.who->credential_id;
  } else {
    id["user"] = "";
    id["auth"] = "none";
  }
  j["identity"] = std::move(id);
  nlohmann::json req = f.info ? RequestInfoJson(*f.info) : nlohmann::json::object();
  req["method"] = f.method;
  req["target"] = f.target;
  if (!f.user_agent.empty()) req["userAgent"] = f.user_agent;
  j["request"] = std::move(req);
  if (!f.kubectl_command.empty() || !f.kubectl_session.empty()) {
    j["kubectl"] = {{"command", f.kubectl_command}, {"session", f.kubectl_session}};
  }
  j["decision"] = {{"action", f.action}, {"rule", f.rule}, {"message", f.message}};
  j["approval"] = f.approval;
  if (!f.identity_change.is_null()) j["identity_change"] = f.identity_change;
  if (!f.impersonated.empty()) j["upstream_identity"] = f.impersonated;
  if (!f.recording_id.empty()) j["recording_id"] = f.recording_id;
  if (!f.namespace_labels.is_null()) j["namespace_labels"] = f.namespace_labels;
  if (f.request_body) j["request_body"] = *f.request_body;
  return j;
}

nlohmann::json ResultRecord(const ResultFacts& f) {
  nlohmann::json j;
  j["v"] = 1;
  j["phase"] = "result";
  j["request_id"] = f.request_id;
  j["completed"] = FormatRfc3339Millis(f.completed_ms);
  j["status"] = f.status;
  j["bytes_in"] = f.bytes_in;
  j["bytes_out"] = f.bytes_out;
  j["duration_ms"] = f.duration_ms;
  if (!f.error.empty()) j["error"] = f.error;
  if (f.recording) j["recording"] = *f.recording;
  return j;
}

}  // namespace kubegate
