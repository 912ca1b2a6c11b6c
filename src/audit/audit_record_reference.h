// For tests only: the audit records' layout as it was built with a nlohmann
// DOM until 2026-12-07. Records are now written straight to canonical text
// (audit_record.h); the tests and the audit_record fuzz target check that
// the text is byte for byte Canonicalize(Reference...Record(facts)), so
// records keep their form and every earlier record reads the same.
#pragma once

#include <nlohmann/json.hpp>

#include "audit/audit_record.h"
#include "classify/request_info_json.h"
#include "common/clock.h"

namespace kubegate::testing {

inline nlohmann::json ReferenceDecisionRecord(const DecisionFacts& f) {
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

inline nlohmann::json ReferenceResultRecord(const ResultFacts& f) {
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

}  // namespace kubegate::testing
