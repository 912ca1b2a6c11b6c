// Test support for the audit log: an AuditStore on a TestDatabase, and
// decision and result entries built from a few fields.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "audit/audit_record.h"
#include "audit/audit_store.h"
#include "store/store_test_util.h"

namespace kubegate::testing {

// The audit tables of `db`, migrated.
inline std::unique_ptr<AuditStore> OpenAuditStore(const TestDatabase& db) {
  auto s = AuditStore::Open(db.Connect());
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

struct EntrySpec {
  std::string id;
  std::string user = "alice";
  std::vector<std::string> groups = {"dev"};
  std::string verb = "get";
  std::string resource = "pods";
  std::string ns = "default";
  std::string name = "web";
  std::string action = "allow";
  std::int64_t time_ms = 1'795'000'000'000;
  std::vector<std::string> approvers;
  std::string approval_id;
  std::string approval_state;  // ApprovalStateName; "" leaves it out
  std::string decided_by;
  std::string approval_reason;
  std::string task;  // a per-task token's task
};

inline AuditEntry DecisionEntry(const EntrySpec& s) {
  Identity who;
  who.user = s.user;
  who.groups = s.groups;
  if (!s.task.empty()) {
    who.method = AuthMethod::kTaskToken;
    who.kind = IdentityKind::kAgent;
    who.task = s.task;
    who.credential_id = "cr-test";
  }
  RequestInfo info;
  info.is_resource_request = true;
  info.verb = s.verb;
  info.api_version = "v1";
  info.resource = s.resource;
  info.namespace_ = s.ns;
  info.name = s.name;
  DecisionFacts f;
  f.request_id = s.id;
  f.received_ms = s.time_ms;
  f.who = &who;
  f.source = "127.0.0.1";
  f.method = "GET";
  f.target = "/api/v1/namespaces/" + s.ns + "/" + s.resource + "/" + s.name;
  f.info = &info;
  f.action = s.action;
  f.rule = s.action == "deny" ? "test-deny" : "test-allow";
  if (!s.approval_id.empty()) {
    f.approval["id"] = s.approval_id;
    f.approval["approvers"] = nlohmann::json::array();
    for (const auto& a : s.approvers) f.approval["approvers"].push_back({{"user", a}, {"at", "2026-11-22T00:00:00Z"}});
    if (!s.approval_state.empty()) f.approval["state"] = s.approval_state;
    if (!s.decided_by.empty()) f.approval["decided_by"] = s.decided_by;
    if (!s.approval_reason.empty()) f.approval["reason"] = s.approval_reason;
  }
  auto e = BuildDecisionEntry(f);
  EXPECT_TRUE(e) << e.error().message;
  return *e;
}

inline AuditEntry ResultEntry(const std::string& id, int status, std::int64_t time_ms = 1'795'000'000'100,
                              std::optional<nlohmann::json> recording = std::nullopt) {
  ResultFacts r;
  r.request_id = id;
  r.completed_ms = time_ms;
  r.status = status;
  r.recording = std::move(recording);
  auto e = BuildResultEntry(r);
  EXPECT_TRUE(e) << e.error().message;
  return *e;
}

}  // namespace kubegate::testing
