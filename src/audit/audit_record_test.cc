#include "audit/audit_record.h"

#include <gtest/gtest.h>

#include "audit/audit_entry.h"
#include "audit/audit_format.h"
#include "audit/audit_test_util.h"

namespace kubegate {
namespace {

TEST(RedactRequestBody, SecretValuesNeverReachTheRecord) {
  std::string secret = R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","annotations":{)"
                       R"("kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"pw\":\"aHVudGVyMg==\"}}"}},)"
                       R"("data":{"pw":"aHVudGVyMg=="},"stringData":{"user":"root"}})";
  std::string out = RedactRequestBody("secrets", "application/json", secret).dump();
  EXPECT_EQ(out.find("aHVudGVyMg"), std::string::npos) << out;
  EXPECT_EQ(out.find("root"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("pw":"<redacted>")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("name":"db")"), std::string::npos) << out;

  std::string list = R"({"kind":"List","items":[{"kind":"ConfigMap","data":{"k":"visible"}},)"
                     R"({"kind":"Secret","data":{"k":"c2VjcmV0"}}]})";
  out = RedactRequestBody("", "application/json", list).dump();
  EXPECT_NE(out.find("visible"), std::string::npos) << out;
  EXPECT_EQ(out.find("c2VjcmV0"), std::string::npos) << out;

  // Patches to secrets carry no kind.
  out = RedactRequestBody("secrets", "application/merge-patch+json", R"({"data":{"k":"bmV3"}})").dump();
  EXPECT_EQ(out.find("bmV3"), std::string::npos) << out;
  out = RedactRequestBody("secrets", "application/json-patch+json",
                          R"([{"op":"replace","path":"/data/k","value":"bmV3"}])")
            .dump();
  EXPECT_EQ(out.find("bmV3"), std::string::npos) << out;
  EXPECT_NE(out.find("/data/k"), std::string::npos) << out;
}

TEST(RedactRequestBody, NonJsonAndHugeBodiesAreSummarized) {
  nlohmann::json pb = RedactRequestBody("secrets", "application/vnd.kubernetes.protobuf", std::string("k8s\0\x0a", 5));
  EXPECT_FALSE(pb.contains("json"));
  EXPECT_EQ(pb["bytes"], 5);
  EXPECT_EQ(pb["sha256"].get<std::string>().size(), 64u);
  std::string big = R"({"kind":"ConfigMap","data":{"k":")" + std::string(100 * 1024, 'x') + "\"}}";
  nlohmann::json b = RedactRequestBody("configmaps", "application/json", big);
  EXPECT_FALSE(b.contains("json"));
  EXPECT_NE(b["omitted"].get<std::string>().find("larger than"), std::string::npos);
}

// Canonicalize writes, byte for byte, what nlohmann's dump writes (records
// hashed before the fast path must keep verifying, and DeriveIndex parses
// the text back): plain ASCII, escapes, control characters, DEL, UTF-8,
// invalid UTF-8 (replaced), numbers of each kind, nesting, odd keys.
TEST(AuditEntry, CanonicalFormIsNlohmannsDump) {
  using nlohmann::json;
  json j = {
      {"plain", "kubectl get pods -n default"},
      {"quote", "say \"hi\""},
      {"backslash", "C:\\dir"},
      {"control", std::string("tab\tnl\nnul") + std::string(1, '\0') + "\x01\x1f"},
      {"del", "\x7f"},
      {"utf8", "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91"},
      {"invalid", "bad \xff\xfe byte \xc3"},
      {"numbers", {0, -1, 42, 9007199254740993LL, 18446744073709551615ULL, 1.5, -0.25, 1e300}},
      {"flags", {true, false, nullptr}},
      {"nested", {{"empty_object", json::object()}, {"empty_array", json::array()}, {"list", {{{"a", 1}}, "x"}}}},
      {"key \"with\" quotes\n", "v"},
      {"\xe2\x9c\x93 key", "v"},
      {"\xff key", "v"},
  };
  EXPECT_EQ(Canonicalize(j), j.dump(-1, ' ', false, json::error_handler_t::replace));
  for (const json& one : {json("x"), json(1), json(nullptr), json::array(), json::object(), json("\x80")}) {
    EXPECT_EQ(Canonicalize(one), one.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

TEST(AuditEntry, IndexIsDerivedFromTheHashedRecord) {
  AuditEntry e = testing::DecisionEntry({.id = "kg-1", .user = "bot", .groups = {"agents"}, .verb = "delete",
                                         .resource = "namespaces", .ns = "", .name = "prod", .action = "review",
                                         .approvers = {"carol"}, .approval_id = "ap-9"});
  EXPECT_EQ(e.index.request_id, "kg-1");
  EXPECT_EQ(e.index.phase, "decision");
  EXPECT_EQ(e.index.actor, "bot");
  EXPECT_EQ(e.index.verb, "delete");
  EXPECT_EQ(e.index.resource, "namespaces");
  EXPECT_EQ(e.index.name, "prod");
  EXPECT_EQ(e.index.decision, "review");
  EXPECT_EQ(e.index.approval_id, "ap-9");
  EXPECT_EQ(e.index.approvers, std::vector<std::string>{"carol"});
  EXPECT_EQ(e.index.groups, std::vector<std::string>{"agents"});
  // Canonical: sorted keys, so equal records hash equally.
  EXPECT_LT(e.canonical.find("\"approval\""), e.canonical.find("\"decision\""));
  EXPECT_FALSE(DeriveIndex("[1,2]"));
  EXPECT_FALSE(DeriveIndex(R"({"phase":"decision"})"));
}

TEST(AuditFormat, ShowAndK8sEventAnswerTheReviewerQuestions) {
  AuditPair p{testing::DecisionEntry({.id = "kg-7", .user = "bot", .verb = "delete", .resource = "namespaces",
                                      .ns = "", .name = "prod", .action = "review", .approvers = {"carol"},
                                      .approval_id = "ap-1"}),
              testing::ResultEntry("kg-7", 200)};
  p.decision.seq = 41;
  p.decision.hash = "abc";
  p.result->seq = 42;
  std::string text = AuditExplain(p);
  for (const char* want : {"Who acted", "bot (a person", "verb delete on namespaces \"prod\"", "Yes. Rule \"test-allow\"",
                           "Approved by carol", "HTTP status 200", "Chain position 41", "kubegate-request-id"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  nlohmann::json ev = AuditK8sEvent(p);
  EXPECT_EQ(ev["apiVersion"], "audit.k8s.io/v1");
  EXPECT_EQ(ev["kind"], "Event");
  EXPECT_EQ(ev["auditID"], "kg-7");
  EXPECT_EQ(ev["stage"], "ResponseComplete");
  EXPECT_EQ(ev["verb"], "delete");
  EXPECT_EQ(ev["user"]["username"], "bot");
  EXPECT_EQ(ev["objectRef"]["resource"], "namespaces");
  EXPECT_EQ(ev["objectRef"]["name"], "prod");
  EXPECT_EQ(ev["responseStatus"]["code"], 200);
  EXPECT_EQ(ev["annotations"]["kubegate.io/decision"], "review");
  EXPECT_EQ(ev["annotations"]["kubegate.io/approval-id"], "ap-1");
  EXPECT_EQ(ev["annotations"]["kubegate.io/approvers"], "carol");
  std::string table = AuditTable({p});
  EXPECT_NE(table.find("kg-7"), std::string::npos);
  EXPECT_NE(table.find("review"), std::string::npos);
}

// `audit show` states the outcome of every review, not only approvals.
TEST(AuditFormat, ShowStatesTheOutcomeOfEveryReview) {
  struct Case {
    const char* state;
    const char* decided_by;
    const char* reason;
    const char* want;
  };
  const Case cases[] = {
      {"approved", "carol", "", "Outcome: approved (decided by carol)"},
      {"denied", "carol", "not during the freeze", "Outcome: DENIED by carol: not during the freeze"},
      {"expired", "", "nobody decided within the wait limit", "expired undecided"},
      {"withdrawn", "", "the caller disconnected while waiting", "Outcome: withdrawn (the caller disconnected"},
      {"abandoned", "", "the gateway that held the request stopped", "Outcome: abandoned (the gateway that held"},
  };
  for (const auto& c : cases) {
    AuditPair p{testing::DecisionEntry({.id = "kg-8", .action = "review", .approval_id = "kg-8",
                                        .approval_state = c.state, .decided_by = c.decided_by,
                                        .approval_reason = c.reason}),
                testing::ResultEntry("kg-8", 403)};
    std::string text = AuditExplain(p);
    EXPECT_NE(text.find(c.want), std::string::npos) << c.state << "\n" << text;
  }
}

}  // namespace
}  // namespace kubegate
