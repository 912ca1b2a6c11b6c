// ApprovalService on both backends: deciding rules, scope escapes, races,
// expiry and restarts.
#include "approval/approval.h"

#include <map>
#include <thread>

#include "approval/approval_api.h"
#include "approval/orphan_sessions.h"
#include "audit/audit_entry.h"
#include "audit/audit_record.h"
#include "common/digest.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace kubegate {
namespace {

using testing::TestDatabase;

Identity Person(const std::string& user, std::vector<std::string> groups = {"sre"}) {
  Identity i;
  i.user = user;
  i.groups = std::move(groups);
  return i;
}

RequestInfo Info(const std::string& method, const std::string& target) {
  auto r = ClassifyRequest(method, target);
  EXPECT_TRUE(r) << target;
  return *r;
}

class ApprovalTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    KG_REQUIRE_BACKEND(db_);
    svc_ = std::make_unique<ApprovalService>(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
    rule_.name = "prod-exec";
    rule_.action = PolicyAction::kReview;
    rule_.review.approver_groups = {"sre"};
    rule_.review.approvals = 1;
    rule_.review.max_wait_ms = 15 * 60'000;
    rule_.review.max_grant_ms = 60 * 60'000;
    bot_ = Person("bot", {"agents"});
    bot_.kind = IdentityKind::kAgent;
  }

  ApprovalRequest Open(const RequestInfo& info, const std::string& id = "kg-1") {
    auto r = svc_->Open({id, &bot_, &info, &rule_, {}});
    EXPECT_TRUE(r) << r.error().message;
    return *r;
  }

  TestDatabase db_{GetParam()};
  ManualClock clock_{1'795'000'000'000};
  std::unique_ptr<ApprovalService> svc_;
  PolicyRule rule_;
  Identity bot_;
  int counter_ = 0;
};

TEST_P(ApprovalTest, GrantCoversExactlyTheApprovedRequest) {
  RequestInfo cat = Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=c");
  ApprovalRequest req = Open(cat);
  EXPECT_EQ(req.state, ApprovalState::kPending);
  auto approved = svc_->Approve(req.id, Person("carol"), {.reason = "incident 7", .grant_ms = 15 * 60'000});
  ASSERT_TRUE(approved) << approved.error().message;
  EXPECT_EQ(approved->state, ApprovalState::kApproved);
  EXPECT_EQ(approved->decided_by, "carol");
  ASSERT_FALSE(approved->grant_id.empty());
  auto use = [&](const std::string& method, const std::string& target, const Identity& who) {
    auto g = svc_->UseGrant(who, {Info(method, target), ""}, "prod-exec");
    EXPECT_TRUE(g) << g.error().message;
    return g && *g;
  };
  EXPECT_TRUE(use("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=c", bot_));
  // kubectl 1.30+ sends the same exec as a WebSocket GET.
  EXPECT_TRUE(use("GET", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=c", bot_));
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/x/pods/b/exec?command=cat&command=/etc/hosts&container=c", bot_));
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/x/pods/a/exec?command=sh&container=c", bot_));
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/y/pods/a/exec?command=cat&command=/etc/hosts&container=c", bot_));
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=d", bot_));
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=c", Person("eve", {})));
  EXPECT_FALSE(use("DELETE", "/api/v1/namespaces/x/pods/a", bot_));
  clock_.Advance(15 * 60'000);
  EXPECT_FALSE(use("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat&command=/etc/hosts&container=c", bot_))
      << "a grant used after expiry";
}

TEST_P(ApprovalTest, AGrantForATaskTokenServesOnlyThatToken) {
  Identity tasked = bot_;
  tasked.method = AuthMethod::kTaskToken;
  tasked.task = "T-1";
  tasked.credential_id = "cr-1";
  RequestInfo get = Info("GET", "/api/v1/namespaces/x/secrets/db");
  auto opened = svc_->Open({"kg-t", &tasked, &get, &rule_, nlohmann::json::object()});
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened->requester_task, "T-1");
  EXPECT_NE(DescribeApproval(*opened, clock_.NowMillis()).find("task:     T-1"), std::string::npos);
  ASSERT_TRUE(svc_->Approve(opened->id, Person("carol"), {.reason = "ok", .grant_ms = 15 * 60'000}));
  auto use = [&](const Identity& who) {
    auto g = svc_->UseGrant(who, {get, ""}, "prod-exec");
    EXPECT_TRUE(g) << g.error().message;
    return g && *g;
  };
  // Another token of the same task, the same agent with its static token,
  // or another task: none of them holds the grant.
  Identity other_token = tasked;
  other_token.credential_id = "cr-2";
  Identity other_task = tasked;
  other_task.task = "T-2";
  EXPECT_FALSE(use(other_token));
  EXPECT_FALSE(use(bot_));
  EXPECT_FALSE(use(other_task));
  EXPECT_TRUE(use(tasked));
}

TEST_P(ApprovalTest, WideningStaysInsideTheRuleLimits) {
  ApprovalRequest req = Open(Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=cat"));
  auto too_long = svc_->Approve(req.id, Person("carol"), {.reason = "", .grant_ms = 2 * 60 * 60'000});
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().http_code, 403);
  EXPECT_NE(too_long.error().message.find("at most 60 minutes"), std::string::npos) << too_long.error().message;
  auto ok = svc_->Approve(req.id, Person("carol"), {.reason = "", .grant_ms = 15 * 60'000, .any_command = true});
  ASSERT_TRUE(ok);
  auto g = svc_->UseGrant(bot_, {Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=sh"), ""}, "prod-exec");
  ASSERT_TRUE(g);
  EXPECT_TRUE(*g) << "exec into this pod with any command, for 15 minutes";
  auto other = svc_->UseGrant(bot_, {Info("POST", "/api/v1/namespaces/x/pods/b/exec?command=sh"), ""}, "prod-exec");
  EXPECT_FALSE(*other);
}

TEST_P(ApprovalTest, DecidingRulesRefuseWithClearStatuses) {
  ApprovalRequest req = Open(Info("DELETE", "/api/v1/namespaces/demo"));
  auto unknown = svc_->Approve("kg-nope", Person("carol"), {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().http_code, 404);
  auto outsider = svc_->Approve(req.id, Person("mallory", {"dev"}), {});
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.error().http_code, 403);
  EXPECT_NE(outsider.error().message.find("not an approver"), std::string::npos);
  Identity self = bot_;
  self.groups.push_back("sre");  // the requester is in the approvers' group
  auto own = svc_->Approve(req.id, self, {});
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().http_code, 403);
  EXPECT_NE(own.error().message.find("self-approval"), std::string::npos);
  auto denied = svc_->Deny(req.id, Person("carol"), "not during the freeze");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->state, ApprovalState::kDenied);
  auto late = svc_->Approve(req.id, Person("dave"), {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().http_code, 409);
  EXPECT_NE(late.error().message.find("already denied by carol"), std::string::npos) << late.error().message;
}

TEST_P(ApprovalTest, TwoOfThreeCountsDistinctPeopleOnly) {
  rule_.review.approvals = 2;
  ApprovalRequest req = Open(Info("DELETE", "/api/v1/namespaces/demo"));
  ASSERT_TRUE(svc_->Approve(req.id, Person("carol"), {}));
  auto twice = svc_->Approve(req.id, Person("carol"), {});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().http_code, 409);
  EXPECT_EQ(svc_->Get(req.id)->state, ApprovalState::kPending);
  auto second = svc_->Approve(req.id, Person("dave"), {});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->state, ApprovalState::kApproved);
  ASSERT_EQ(second->votes.size(), 2u);
  auto third = svc_->Approve(req.id, Person("erin"), {});
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().http_code, 409);
}

TEST_P(ApprovalTest, ExpiredRequestsCannotBeApproved) {
  ApprovalRequest req = Open(Info("DELETE", "/api/v1/namespaces/demo"));
  clock_.Advance(15 * 60'000);
  EXPECT_EQ(svc_->Get(req.id)->state, ApprovalState::kExpired);
  auto late = svc_->Approve(req.id, Person("carol"), {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().http_code, 409);
  EXPECT_NE(late.error().message.find("expired"), std::string::npos);
}

// kubectl retries a refused WebSocket exec over SPDY, and callers re-run
// commands: one pending request, not several.
TEST_P(ApprovalTest, RetriesAndReRunsShareOnePendingRequest) {
  ApprovalRequest ws = Open(Info("GET", "/api/v1/namespaces/x/pods/a/exec?command=ls&stdout=true"), "kg-ws");
  ApprovalRequest spdy = Open(Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=ls&stdout=true"), "kg-spdy");
  EXPECT_EQ(ws.id, "kg-ws");
  EXPECT_EQ(spdy.id, "kg-ws");
  ApprovalRequest other = Open(Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=id&stdout=true"), "kg-other");
  EXPECT_EQ(other.id, "kg-other");
}

TEST_P(ApprovalTest, SingleUseGrantIsUsedOnce) {
  RequestInfo del = Info("DELETE", "/api/v1/namespaces/demo");
  ApprovalRequest req = Open(del);
  ASSERT_TRUE(svc_->Approve(req.id, Person("carol"), {}));
  EXPECT_TRUE(*svc_->UseGrant(bot_, {del, ""}, "prod-exec"));
  EXPECT_FALSE(*svc_->UseGrant(bot_, {del, ""}, "prod-exec"));
}

TEST_P(ApprovalTest, RacingApproversAndApproveVersusDenyHaveOneWinner) {
  for (int round = 0; round < 4; ++round) {
    ApprovalRequest req = Open(Info("DELETE", "/api/v1/namespaces/race" + std::to_string(round)),
                               "kg-race" + std::to_string(round));
    ApprovalService a(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_), b(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
    Result<ApprovalRequest> ra = Error::Internal(""), rb = Error::Internal("");
    std::thread ta([&] { ra = a.Approve(req.id, Person("carol"), {}); });
    std::thread tb([&] {
      rb = round % 2 ? b.Deny(req.id, Person("dave"), "no") : b.Approve(req.id, Person("dave"), {});
    });
    ta.join();
    tb.join();
    EXPECT_NE(ra.ok(), rb.ok()) << (ra ? "" : ra.error().message) << " / " << (rb ? "" : rb.error().message);
    const Result<ApprovalRequest>& loser = ra ? rb : ra;
    if (!loser) {
      EXPECT_EQ(loser.error().http_code, 409) << loser.error().message;
    }
    // One grant exactly when an approval won.
    bool approved = svc_->Get(req.id)->state == ApprovalState::kApproved;
    EXPECT_EQ(approved, ra.ok() || (round % 2 == 0 && rb.ok()));
    auto grants = svc_->ListGrants(false);
    ASSERT_TRUE(grants);
    int for_this = 0;
    for (const auto& g : *grants) for_this += g.approval_id == req.id;
    EXPECT_EQ(for_this, approved ? 1 : 0);
  }
}

TEST_P(ApprovalTest, RestartAbandonsHeldRequestsAndKeepsGrants) {
  RequestInfo held = Info("DELETE", "/api/v1/namespaces/held");
  ApprovalRequest h = Open(held, "kg-held");
  RequestInfo granted = Info("DELETE", "/api/v1/namespaces/granted");
  ApprovalRequest g = Open(granted, "kg-granted");
  ASSERT_TRUE(svc_->Approve(g.id, Person("carol"), {.reason = "", .grant_ms = 30 * 60'000}));
  ApprovalService restarted(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  auto n = restarted.AbandonHeld();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(restarted.Get(h.id)->state, ApprovalState::kAbandoned);
  auto late = restarted.Approve(h.id, Person("carol"), {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().http_code, 409);
  EXPECT_TRUE(*restarted.UseGrant(bot_, {granted, ""}, "prod-exec"));
}

// Replicas on one store: a replica that dies leaves its held requests to
// be abandoned by the survivors, and one that starts leaves alone what the
// live ones hold (AbandonHeld, made for one process, abandoned them all).
TEST_P(ApprovalTest, ReplicasAbandonOnlyTheHoldsOfAReplicaThatIsGone) {
  ApprovalService b(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  svc_->SetInstance("replica-a");
  b.SetInstance("replica-b");
  ASSERT_TRUE(svc_->Heartbeat());
  ASSERT_TRUE(b.Heartbeat());
  RequestInfo on_a = Info("DELETE", "/api/v1/namespaces/on-a");
  RequestInfo on_b = Info("DELETE", "/api/v1/namespaces/on-b");
  ApprovalRequest a_req = Open(on_a, "kg-a");
  auto b_req = b.Open({"kg-b", &bot_, &on_b, &rule_, {}});
  ASSERT_TRUE(b_req);
  std::vector<std::string> announced;
  b.SetChangeListener([&](const std::string& id) { announced.push_back(id); });
  // Both alive: nothing is abandoned, by either.
  EXPECT_EQ(*b.AbandonOrphans(10'000), 0);
  EXPECT_EQ(*svc_->AbandonOrphans(10'000), 0);
  // A stops beating; B keeps on. After the limit, B abandons A's hold only.
  clock_.Advance(6'000);
  ASSERT_TRUE(b.Heartbeat());
  EXPECT_EQ(*b.AbandonOrphans(10'000), 0) << "A was seen 6 s ago";
  clock_.Advance(5'000);
  ASSERT_TRUE(b.Heartbeat());
  EXPECT_EQ(*b.AbandonOrphans(10'000), 1);
  EXPECT_EQ(b.Get(a_req.id)->state, ApprovalState::kAbandoned);
  EXPECT_EQ(b.Get(b_req->id)->state, ApprovalState::kPending);
  EXPECT_EQ(announced, std::vector<std::string>{a_req.id}) << "waiters everywhere are told";
  EXPECT_FALSE(b.Approve(a_req.id, Person("carol"), {})) << "it can never run later";
  // A twin of B's request made on a third replica holds it too: B dying
  // alone does not abandon it.
  ApprovalService c(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  c.SetInstance("replica-c");
  ASSERT_TRUE(c.Heartbeat());
  auto twin = c.Open({"kg-twin", &bot_, &on_b, &rule_, {}});
  ASSERT_TRUE(twin);
  EXPECT_EQ(twin->id, b_req->id);
  clock_.Advance(11'000);
  ASSERT_TRUE(c.Heartbeat());
  EXPECT_EQ(*c.AbandonOrphans(10'000), 0);
  EXPECT_EQ(c.Get(b_req->id)->state, ApprovalState::kPending);
}

// Keeps what it is given.
class KeptEntries final : public AuditSink {
 public:
  bool Submit(AuditEntry entry, Done done) override {
    entries.push_back(std::move(entry));
    if (done) done(true);
    return true;
  }
  bool healthy() const override { return true; }
  std::vector<AuditEntry> entries;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void SetWrittenAt(const std::string& path, std::int64_t ms) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ms / 1000;
  times[0].tv_nsec = times[1].tv_nsec = (ms % 1000) * 1'000'000;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

// A replica killed during recorded sessions: a survivor ends each recording
// once (a partial last line cut, a note appended) and writes its result
// record with the file's hash; a session of a live replica, or one whose
// file is still being written, is left alone.
TEST_P(ApprovalTest, ASurvivorEndsTheRecordedSessionsOfAReplicaThatStopped) {
  const std::string dir = ::testing::TempDir() + "orphans-" + GetParam() + "-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  ApprovalService b(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  ApprovalService c(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  svc_->SetInstance("replica-a");
  b.SetInstance("replica-b");
  c.SetInstance("replica-c");
  ASSERT_TRUE(svc_->Heartbeat());
  ASSERT_TRUE(b.Heartbeat());
  const std::int64_t t0 = clock_.NowMillis();
  const std::string header = R"({"version":2,"width":80,"height":24,"timestamp":1795000000})" "\n";
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir + "/" + name, std::ios::binary) << content;
    SetWrittenAt(dir + "/" + name, t0);
  };
  write("kg-dead.cast", header + "[0.5, \"o\", \"hello\\r\\n\"]\n[0.9, \"o\", \"hal");
  write("kg-busy.cast", header);
  write("kg-live.cast", header);
  write("kg-empty.pf", "");  // the killed writer had written nothing yet
  ASSERT_TRUE(svc_->SessionOpened("kg-dead", "kg-dead.cast", "exec", t0));
  ASSERT_TRUE(svc_->SessionOpened("kg-busy", "kg-busy.cast", "exec", t0));
  ASSERT_TRUE(b.SessionOpened("kg-live", "kg-live.cast", "exec", t0));
  ASSERT_TRUE(svc_->SessionOpened("kg-empty", "kg-empty.pf", "portforward", t0));
  ASSERT_TRUE(svc_->SessionOpened("kg-done", "kg-done.cast", "exec", t0));
  ASSERT_TRUE(svc_->SessionClosed("kg-done"));
  KeptEntries sink;
  EXPECT_EQ(EndOrphanSessions(b, sink, dir, clock_, 10'000), 0) << "A is alive";
  // A stops; B and C beat on. kg-busy's file is still being written to.
  clock_.Advance(11'000);
  ASSERT_TRUE(b.Heartbeat());
  ASSERT_TRUE(c.Heartbeat());
  SetWrittenAt(dir + "/kg-busy.cast", clock_.NowMillis() - 2'000);
  EXPECT_EQ(EndOrphanSessions(b, sink, dir, clock_, 10'000), 2);
  EXPECT_EQ(EndOrphanSessions(c, sink, dir, clock_, 10'000), 0) << "B has ended them already";
  ASSERT_EQ(sink.entries.size(), 2u);
  std::map<std::string, nlohmann::json> results;
  for (const auto& e : sink.entries) {
    auto j = nlohmann::json::parse(e.canonical);
    results[j["request_id"]] = j;
  }
  ASSERT_EQ(results.count("kg-dead"), 1u);
  ASSERT_EQ(results.count("kg-empty"), 1u);
  const nlohmann::json& result = results["kg-dead"];
  EXPECT_EQ(result["request_id"], "kg-dead");
  EXPECT_EQ(result["phase"], "result");
  const std::string cast = ReadAll(dir + "/kg-dead.cast");
  const std::string expected_note =
      "the session ended with gateway replica replica-a, which stopped (silent for 10 s); recording closed by replica replica-b";
  EXPECT_EQ(cast, header + "[0.5, \"o\", \"hello\\r\\n\"]\n[11.000, \"m\", \"" + expected_note + "\"]\n");
  const nlohmann::json& rec = result["recording"];
  EXPECT_EQ(rec["file"], "kg-dead.cast");
  EXPECT_EQ(rec["sha256"], Sha256Hex(cast));
  EXPECT_EQ(rec["file_bytes"], cast.size());
  EXPECT_EQ(rec["cut_bytes"], 15u) << "the half-written last line";
  EXPECT_EQ(rec["ended_by"], expected_note);
  EXPECT_EQ(ReadAll(dir + "/kg-busy.cast"), header) << "a file still written to is left alone";
  // The empty port-forward recording: a minimal header naming the request, then the note.
  const std::string pf = ReadAll(dir + "/kg-empty.pf");
  std::istringstream pf_lines(pf);
  std::string pf_header, pf_end, extra;
  std::getline(pf_lines, pf_header);
  std::getline(pf_lines, pf_end);
  EXPECT_FALSE(std::getline(pf_lines, extra)) << pf;
  auto h = nlohmann::json::parse(pf_header, nullptr, false);
  EXPECT_EQ(h.value("kubegate_recording", ""), "portforward/v1") << pf;
  EXPECT_EQ(h["kubegate"].value("request_id", ""), "kg-empty") << pf;
  EXPECT_EQ(nlohmann::json::parse(pf_end, nullptr, false).value("ended_by", ""), expected_note) << pf;
  EXPECT_EQ(results["kg-empty"]["recording"]["sha256"], Sha256Hex(pf));
  EXPECT_EQ(results["kg-empty"]["recording"]["header_rebuilt"], true);
  // Once its writer is quiet too, it is ended; the live replica's is not.
  clock_.Advance(11'000);
  ASSERT_TRUE(b.Heartbeat());
  EXPECT_EQ(EndOrphanSessions(b, sink, dir, clock_, 10'000), 1);
  EXPECT_EQ(nlohmann::json::parse(sink.entries.back().canonical)["request_id"], "kg-busy");
  EXPECT_EQ(ReadAll(dir + "/kg-live.cast"), header);
  std::filesystem::remove_all(dir);
}

// However long an instance itself has not beaten (a SQLite process never
// does), it never takes its own open sessions for a stopped replica's.
TEST_P(ApprovalTest, AnInstanceNeverEndsItsOwnSessions) {
  const std::string dir = ::testing::TempDir() + "own-" + GetParam() + "-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string header = R"({"version":2,"width":80,"height":24,"timestamp":1795000000})" "\n";
  std::ofstream(dir + "/kg-own.cast", std::ios::binary) << header;
  SetWrittenAt(dir + "/kg-own.cast", clock_.NowMillis());
  ASSERT_TRUE(svc_->SessionOpened("kg-own", "kg-own.cast", "exec", clock_.NowMillis()));
  clock_.Advance(11'000);
  KeptEntries sink;
  EXPECT_EQ(EndOrphanSessions(*svc_, sink, dir, clock_, 10'000), 0);
  EXPECT_TRUE(sink.entries.empty());
  EXPECT_EQ(ReadAll(dir + "/kg-own.cast"), header);
  std::filesystem::remove_all(dir);
}

// A held request and its holder are committed together: a request that is
// pending with no holder would be abandoned by another replica's
// AbandonOrphans while this one holds it (seen once in ~175 holds under
// bench/replicas.sh, "was abandoned: the gateway replica that held the
// request stopped"). When the holder cannot be written, nothing is.
TEST_P(ApprovalTest, AHeldRequestIsNeverPendingWithoutItsHolder) {
  auto admin = db_.Connect();
  ASSERT_TRUE(admin->Run("DROP TABLE approval_holder", {}));
  RequestInfo del = Info("DELETE", "/api/v1/namespaces/no-holder");
  auto r = svc_->Open({"kg-nh", &bot_, &del, &rule_, {}});
  EXPECT_FALSE(r) << "the holder could not be written";
  auto pending = svc_->List(ApprovalState::kPending);
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty()) << "a pending request without a holder was committed";
}

TEST_P(ApprovalTest, RevokedGrantsStopCovering) {
  RequestInfo del = Info("DELETE", "/api/v1/namespaces/demo");
  ApprovalRequest req = Open(del);
  auto a = svc_->Approve(req.id, Person("carol"), {.reason = "", .grant_ms = 30 * 60'000});
  ASSERT_TRUE(a);
  auto outsider = svc_->Revoke(a->grant_id, Person("mallory", {"dev"}), "");
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.error().http_code, 403);
  ASSERT_TRUE(svc_->Revoke(a->grant_id, Person("dave"), "done"));
  EXPECT_FALSE(*svc_->UseGrant(bot_, {del, ""}, "prod-exec"));
}

// Issue 10: an approval is bound to one request, and twins that differ in
// their query or body are other reviews.
TEST_P(ApprovalTest, TwinsWithAnotherQueryOrBodyAreSeparateReviews) {
  RequestInfo selected = Info("DELETE", "/api/v1/namespaces/x/pods?labelSelector=app%3Dold-canary");
  RequestInfo all = Info("DELETE", "/api/v1/namespaces/x/pods");
  auto first = svc_->Open({"kg-sel", &bot_, &selected, &rule_, {}, {}, "b1"});
  auto unselected = svc_->Open({"kg-all", &bot_, &all, &rule_, {}, {}, "b1"});
  ASSERT_TRUE(first && unselected);
  EXPECT_NE(first->id, unselected->id) << "a deletecollection without the selector joined the approved one";
  RequestInfo patch = Info("PATCH", "/api/v1/namespaces/x/configmaps/c");
  auto safe = svc_->Open({"kg-safe", &bot_, &patch, &rule_, {}, {}, Sha256Hex("mode: safe-change")});
  auto other = svc_->Open({"kg-other", &bot_, &patch, &rule_, {}, {}, Sha256Hex("mode: other")});
  ASSERT_TRUE(safe && other);
  EXPECT_NE(safe->id, other->id) << "a PATCH with another body joined the approved one";
  auto same = svc_->Open({"kg-same", &bot_, &patch, &rule_, {}, {}, Sha256Hex("mode: safe-change")});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->id, "kg-safe");
  EXPECT_EQ(same->asked, 2);
}

// A one-use grant forwards one of the twins that waited on its approval.
TEST_P(ApprovalTest, TwinsShareTheGrantsUsesNeverExceedThem) {
  RequestInfo del = Info("DELETE", "/api/v1/namespaces/x/pods?labelSelector=app%3Dold");
  auto a = svc_->Open({"kg-a", &bot_, &del, &rule_, {}, {}, "b"});
  auto b = svc_->Open({"kg-b", &bot_, &del, &rule_, {}, {}, "b"});
  ASSERT_TRUE(a && b);
  ASSERT_EQ(b->id, a->id);
  ASSERT_TRUE(svc_->Approve(a->id, Person("carol"), {}));
  EXPECT_TRUE(*svc_->UseGrant(bot_, {del, "b"}, "prod-exec"));
  EXPECT_FALSE(*svc_->UseGrant(bot_, {del, "b"}, "prod-exec")) << "two deletecollections under one use";
}

TEST_P(ApprovalTest, SelectorsBodyStdinTtyAndContainerBindTheGrant) {
  auto approve = [&](const RequestInfo& info, const std::string& body, ApproveOptions o = {}) {
    auto r = svc_->Open({"kg-" + std::to_string(counter_++), &bot_, &info, &rule_, {}, {}, body});
    EXPECT_TRUE(r);
    o.grant_ms = 15 * 60'000;
    EXPECT_TRUE(svc_->Approve(r->id, Person("carol"), o));
  };
  auto covered = [&](const std::string& method, const std::string& target, const std::string& body = "") {
    auto g = svc_->UseGrant(bot_, {Info(method, target), body}, "prod-exec");
    return g && *g;
  };
  // Selectors: approving `get secrets -l app=web` is not every secret.
  approve(Info("GET", "/api/v1/namespaces/x/secrets?labelSelector=app%3Dweb&limit=500"), "");
  EXPECT_TRUE(covered("GET", "/api/v1/namespaces/x/secrets?labelSelector=app%3Dweb&limit=500"));
  EXPECT_TRUE(covered("GET", "/api/v1/namespaces/x/secrets?limit=500&continue=abc&labelSelector=app%3Dweb"))
      << "pages of the same list";
  EXPECT_FALSE(covered("GET", "/api/v1/namespaces/x/secrets?limit=500"));
  EXPECT_FALSE(covered("GET", "/api/v1/namespaces/x/secrets?labelSelector=app%3Ddb"));
  EXPECT_FALSE(covered("GET", "/api/v1/namespaces/x/secrets?labelSelector=app%3Dweb&fieldSelector=type%3Dx"));
  // A body: only the approved one.
  approve(Info("PATCH", "/api/v1/namespaces/x/configmaps/c"), Sha256Hex("safe"));
  EXPECT_FALSE(covered("PATCH", "/api/v1/namespaces/x/configmaps/c", Sha256Hex("other")));
  EXPECT_TRUE(covered("PATCH", "/api/v1/namespaces/x/configmaps/c", Sha256Hex("safe")));
  // stdin/tty: an approved non-interactive cat is not an interactive session.
  approve(Info("POST", "/api/v1/namespaces/x/pods/p/exec?command=cat&command=f&stdout=true&stderr=true"), "");
  EXPECT_FALSE(covered("POST", "/api/v1/namespaces/x/pods/p/exec?command=cat&command=f&stdin=true&stdout=true&tty=true"));
  EXPECT_TRUE(covered("GET", "/api/v1/namespaces/x/pods/p/exec?command=cat&command=f&stdout=true&stderr=true"));
  // No container named: the pod's default container, not every container.
  approve(Info("POST", "/api/v1/namespaces/x/pods/q/exec?command=ls&stdout=true"), "");
  EXPECT_FALSE(covered("POST", "/api/v1/namespaces/x/pods/q/exec?command=ls&stdout=true&container=sidecar"));
  EXPECT_TRUE(covered("POST", "/api/v1/namespaces/x/pods/q/exec?command=ls&stdout=true"));
  // Widening a read to "reads" is explicit and keeps the selectors.
  approve(Info("GET", "/api/v1/namespaces/y/secrets?labelSelector=app%3Dweb"), "", {.reads = true});
  EXPECT_TRUE(covered("GET", "/api/v1/namespaces/y/secrets?labelSelector=app%3Dweb&watch=true&resourceVersion=7"));
  EXPECT_FALSE(covered("GET", "/api/v1/namespaces/y/secrets?watch=true"));
}

// The grant is held by the identity as authenticated: another credential
// carrying the same user name is not its holder.
TEST_P(ApprovalTest, GrantIsHeldByTheIdentityAsAuthenticatedNotTheUserName) {
  RequestInfo exec = Info("POST", "/api/v1/namespaces/x/pods/a/exec?command=id&container=c");
  auto r = svc_->Open({"kg-id", &bot_, &exec, &rule_, {}});
  ASSERT_TRUE(r);
  ASSERT_TRUE(svc_->Approve(r->id, Person("carol"), {.reason = "", .grant_ms = 15 * 60'000}));
  Identity cert_person = bot_;
  cert_person.kind = IdentityKind::kHuman;
  cert_person.method = AuthMethod::kClientCertificate;
  EXPECT_FALSE(*svc_->UseGrant(cert_person, {exec, ""}, "prod-exec"));
  Identity other_groups = bot_;
  other_groups.groups = {"agents", "admins"};
  EXPECT_FALSE(*svc_->UseGrant(other_groups, {exec, ""}, "prod-exec"));
  Identity other_method = bot_;
  other_method.method = AuthMethod::kClientCertificate;
  EXPECT_FALSE(*svc_->UseGrant(other_method, {exec, ""}, "prod-exec"));
  EXPECT_TRUE(*svc_->UseGrant(bot_, {exec, ""}, "prod-exec"));
}

// Who sees what through the REST API, and scopes that are refused.
TEST_P(ApprovalTest, CallersSeeTheirOwnApproversTheirRulesAuditorsAll) {
  RequestInfo del = Info("DELETE", "/api/v1/namespaces/demo");
  auto r = svc_->Open({"kg-vis", &bot_, &del, &rule_, {}});
  ASSERT_TRUE(r);
  auto ids = [&](const Identity& who, bool auditor) {
    auto resp = RunApprovalApi(*svc_, who, auditor, "GET", "/kubegate/v1/approvals", "", "");
    EXPECT_EQ(resp.status, 200);
    return resp.body.find("kg-vis") != std::string::npos;
  };
  EXPECT_TRUE(ids(bot_, false)) << "the requester";
  EXPECT_TRUE(ids(Person("carol"), false)) << "an approver of the rule";
  EXPECT_FALSE(ids(Person("mallory", {"dev"}), false)) << "anyone else";
  EXPECT_TRUE(ids(Person("auditor", {}), true));
  EXPECT_EQ(RunApprovalApi(*svc_, Person("mallory", {"dev"}), false, "GET", "/kubegate/v1/approvals/kg-vis", "", "").status,
            404);
  for (const char* bad : {R"({"scope": [""]})", R"({"scope": []})", R"({"scope": ["any-commnd"]})", R"({"scope": "exact"})"}) {
    auto resp = RunApprovalApi(*svc_, Person("carol"), false, "POST", "/kubegate/v1/approvals/kg-vis/approve", "", bad);
    EXPECT_EQ(resp.status, 400) << bad << " " << resp.body;
  }
  EXPECT_EQ(svc_->Get("kg-vis")->state, ApprovalState::kPending);
  auto ok = RunApprovalApi(*svc_, Person("carol"), false, "POST", "/kubegate/v1/approvals/kg-vis/approve", "",
                           R"({"scope": ["exact"], "for": "10m"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto grants = [&](const Identity& who, bool auditor) {
    return RunApprovalApi(*svc_, who, auditor, "GET", "/kubegate/v1/grants", "format=text", "").body;
  };
  EXPECT_NE(grants(bot_, false).find("bot (agent, bearer-token) may delete namespaces named demo"), std::string::npos)
      << grants(bot_, false);
  EXPECT_NE(grants(bot_, false).find("10m left (rule prod-exec, approval kg-vis)"), std::string::npos) << grants(bot_, false);
  EXPECT_EQ(grants(Person("mallory", {"dev"}), false), "No grants.\n");
}

INSTANTIATE_TEST_SUITE_P(Backends, ApprovalTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kubegate

namespace kubegate {
namespace {

TEST(ApprovalDescription, SummarizesBodiesAndDryRunAnswers) {
  auto body = RedactRequestBody("secrets", "application/json",
                                R"({"kind":"Secret","apiVersion":"v1","metadata":{"name":"db"},"data":{"p":"c2VjcmV0"}})");
  std::string s = SummarizeRequestBody(body);
  EXPECT_EQ(s.rfind("Secret db: {", 0), 0u) << s;
  EXPECT_EQ(s.find("c2VjcmV0"), std::string::npos) << "a Secret's value reached the summary: " << s;
  std::string patch = SummarizeRequestBody(RedactRequestBody(
      "deployments", "application/json-patch+json", R"([{"op":"replace","path":"/spec/replicas","value":0}])"));
  EXPECT_EQ(patch.rfind("JSON patch of 1 operation: ", 0), 0u) << patch;
  std::string big = SummarizeRequestBody(RedactRequestBody(
      "configmaps", "application/json", R"({"kind":"ConfigMap","data":{"k":")" + std::string(5000, 'x') + "\"}}"));
  EXPECT_NE(big.find("... (5"), std::string::npos) << big.substr(0, 80);
  EXPECT_LT(big.size(), kBodySummaryChars + 100);
  EXPECT_EQ(SummarizeRequestBody(RedactRequestBody("pods", "application/vnd.kubernetes.protobuf", std::string_view("k8s\0\x01", 5))),
            "5 bytes (not JSON (application/vnd.kubernetes.protobuf))");

  EXPECT_EQ(DescribeDryRunAnswer(200, R"({"kind":"Namespace","metadata":{"name":"demo"}})"),
            "would succeed (HTTP 200, Namespace demo)");
  EXPECT_EQ(DescribeDryRunAnswer(404, R"({"kind":"Status","reason":"NotFound","message":"namespaces \"x\" not found"})"),
            "would fail: HTTP 404 NotFound: namespaces \"x\" not found");
  EXPECT_EQ(DescribeDryRunAnswer(500, "not json"), "would fail: HTTP 500");
  // Fields of other types than Kubernetes uses never throw.
  EXPECT_EQ(DescribeDryRunAnswer(200, R"({"kind":5,"metadata":{"name":["x"]}})"), "would succeed (HTTP 200)");
  EXPECT_EQ(DescribeDryRunAnswer(403, R"({"kind":"Status","reason":{},"message":7})"), "would fail: HTTP 403");
  std::string odd = SummarizeRequestBody(RedactRequestBody("configmaps", "application/json",
                                                           R"({"kind":{"a":1},"metadata":"x","data":{"k":"v"}})"));
  EXPECT_NE(odd.find("\"k\":\"v\""), std::string::npos) << odd;
}

}  // namespace
}  // namespace kubegate
