#include "audit/audit_record.h"

#include <gtest/gtest.h>

#include "audit/audit_entry.h"
#include "audit/audit_format.h"
#include "audit/canonical_json.h"
#include "audit/audit_record_reference.h"
#include "audit/audit_test_util.h"

#include <random>

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

// The chain's hash is SHA-256 of "kubegate-audit-v1\n<seq>\n<prev>\n<record>"
// (printf ... | sha256sum): records already written verify only while
// it stays so, however it is computed.
TEST(AuditEntry, ChainHashIsTheDocumentedDigest) {
  EXPECT_EQ(ChainHash(7, "ab", R"({"a":1})"), "124a797ff140d2760ceb6e8ecfe9fef4f4f5c62131864c6db17a7aa04aa88c1c");
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

// Records are written straight to canonical text. For facts with every
// optional part on and off, and strings of every kind (quotes, control
// characters, UTF-8, invalid UTF-8, keys that sort near each other), the
// text is byte for byte the canonical form of the layout built with a
// nlohmann DOM before (audit_record_reference.h), and the index equals the
// one verification derives from the text.
TEST(AuditRecord, WrittenRecordsAreTheCanonicalFormOfTheReferenceLayout) {
  std::mt19937 rng(20261207);
  const std::vector<std::string> strings = {
      "", "alice", "say \"hi\"", "C:\\dir", std::string("nul\0x", 5), "tab\tnl\n", "\x7f",
      "caf\xc3\xa9 \xe2\x9c\x93", "bad \xff\xfe", "kubectl exec -it web -- sh", "system:serviceaccount:ns:sa"};
  auto pick = [&] { return strings[rng() % strings.size()]; };
  auto maybe = [&] { return rng() % 2 == 0; };
  int checked = 0;
  for (int round = 0; round < 3000; ++round) {
    Identity who;
    who.user = pick();
    for (int g = static_cast<int>(rng() % 3); g > 0; --g) who.groups.push_back(pick());
    who.kind = maybe() ? IdentityKind::kAgent : IdentityKind::kHuman;
    who.method = static_cast<AuthMethod>(rng() % 5);
    if (maybe()) who.auth_source = pick();
    if (maybe()) who.task = pick();
    if (maybe()) who.credential_id = pick();
    RequestInfo info;
    info.is_resource_request = maybe();
    info.path = pick();
    info.verb = pick();
    info.api_prefix = maybe() ? "api" : "apis";
    info.api_group = pick();
    info.api_version = "v1";
    info.namespace_ = pick();
    info.resource = pick();
    info.subresource = pick();
    info.name = pick();
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) info.parts.push_back(pick());
    info.stream = static_cast<StreamKind>(rng() % 4);
    if (maybe()) info.exec = ExecInfo{pick(), {pick(), pick()}, maybe(), maybe(), maybe(), maybe()};
    if (maybe()) info.ports = {pick(), "8080"};
    info.dry_run = maybe();

    DecisionFacts f;
    f.request_id = round == 0 ? "" : "kg-" + std::to_string(round) + pick();
    f.received_ms = round == 1 ? -5 : 1'795'000'000'000 + static_cast<std::int64_t>(rng() % 100'000'000);
    f.who = maybe() ? &who : nullptr;
    f.source = pick();
    f.method = pick();
    f.target = pick();
    if (maybe()) f.user_agent = pick();
    if (maybe()) f.kubectl_command = pick();
    if (maybe()) f.kubectl_session = pick();
    f.info = maybe() ? &info : nullptr;
    f.action = pick();
    f.rule = pick();
    f.message = pick();
    switch (rng() % 4) {
      case 0: break;  // the default, {}
      case 1: f.approval = {{"id", pick()}, {"approvers", {{{"user", pick()}, {"at", 12}}, {{"user", 7}}}}}; break;
      case 2: f.approval = {{"id", 5}, {"approvers", "carol"}, {"scope", {{"pod", pick()}, {"minutes", 15}}}}; break;
      default: f.approval = nlohmann::json();  // null
    }
    if (maybe()) f.identity_change = {{"action", pick()}, {"ids", {pick(), 3, true, nullptr, 1.5}}};
    if (maybe()) f.recording_id = pick();
    if (maybe()) f.namespace_labels = {{pick(), pick()}};
    if (maybe()) f.request_body = nlohmann::json{{"bytes", 12}, {"json", {{"kind", pick()}}}};
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) f.impersonated[pick()] += pick();

    auto want = MakeEntry(testing::ReferenceDecisionRecord(f));
    auto got = BuildDecisionEntry(f);
    ASSERT_EQ(static_cast<bool>(want), static_cast<bool>(got)) << round;
    if (!want) continue;
    ASSERT_EQ(got->canonical, want->canonical) << round;
    ASSERT_EQ(got->index, want->index) << round << " " << got->canonical;
    auto derived = DeriveIndex(got->canonical);
    ASSERT_TRUE(derived) << round;
    ASSERT_EQ(*derived, got->index) << round;

    ResultFacts r;
    r.request_id = f.request_id;
    r.completed_ms = f.received_ms + static_cast<std::int64_t>(rng() % 1000);
    r.status = static_cast<int>(rng() % 600) - (round % 7 == 0 ? 1000 : 0);
    r.bytes_in = maybe() ? 0 : 18446744073709551615ULL;
    r.bytes_out = rng();
    r.duration_ms = static_cast<std::int64_t>(rng() % 100000) - 5;
    if (maybe()) r.error = pick();
    if (maybe()) r.recording = nlohmann::json{{"file", pick()}, {"sha256", pick()}, {"truncated", maybe()}};
    auto want_r = MakeEntry(testing::ReferenceResultRecord(r));
    auto got_r = BuildResultEntry(r);
    ASSERT_EQ(static_cast<bool>(want_r), static_cast<bool>(got_r)) << round;
    if (!want_r) continue;
    ASSERT_EQ(got_r->canonical, want_r->canonical) << round;
    ASSERT_EQ(got_r->index, want_r->index) << round;
    ++checked;
  }
  EXPECT_GT(checked, 2900);
  EXPECT_FALSE(BuildDecisionEntry(DecisionFacts{})) << "no request id";
  EXPECT_FALSE(BuildResultEntry(ResultFacts{})) << "no request id";
}

TEST(CanonicalObject, SortsMembersAndKeepsTheLastOfAKeyAddedTwice) {
  CanonicalObject o;
  o.Add("verb", "get");
  o.AddInt("v", -1);
  o.AddUInt("big", 18446744073709551615ULL);
  o.AddBool("b", true);
  o.Add("verb", "list");
  o.AddList("a", {"x", "y\"z"});
  EXPECT_EQ(o.Text(), R"({"a":["x","y\"z"],"b":true,"big":18446744073709551615,"v":-1,"verb":"list"})");
  EXPECT_EQ(CanonicalObject().Text(), "{}");
}

// Past the members kept in place (16), the rest are kept apart: written in
// the same order as nlohmann's DOM writes them, a key added again (in place,
// then apart) keeping its last value.
TEST(CanonicalObject, ManyMembersAreWrittenAsTheDomWritesThem) {
  std::vector<std::string> keys;
  for (int i = 40; i > 0; --i) keys.push_back("k" + std::to_string(i));
  CanonicalObject o;
  nlohmann::json dom = nlohmann::json::object();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    o.AddInt(keys[i], static_cast<std::int64_t>(i));
    dom[keys[i]] = i;
  }
  o.Add(keys[3], "again");  // first added in place, now apart
  dom[keys[3]] = "again";
  EXPECT_EQ(o.Text(), Canonicalize(dom));
  EXPECT_FALSE(o.empty());
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
