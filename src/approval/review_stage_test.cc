// The review stage without sockets: ManualClock for hold and grant expiry,
// a SQLite store per test, recorded notifications. And WakeUps, which wake
// held requests and streams instead of polling.
#include "approval/review_stage.h"

#include <gtest/gtest.h>

#include "approval/wake_ups.h"
#include "store/store_test_util.h"

namespace kubegate {
namespace {

using testing::TestDatabase;

class RecordedEvents : public ApprovalEvents {
 public:
  void Notify(const std::string& event, const ApprovalRequest& r) override { seen.push_back(event + " " + r.id); }
  std::vector<std::string> seen;
};

class ReviewStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = std::make_unique<testing::FaultyConnection>(db_.Connect());
    conn->fail_if = [this](std::string_view) { return store_down_; };
    auto store = ApprovalService::OpenDatabase(std::move(conn));
    ASSERT_TRUE(store) << store.error().message;
    svc_ = std::make_unique<ApprovalService>(std::move(*store), clock_);
    rule_.name = "prod-delete";
    rule_.action = PolicyAction::kReview;
    rule_.message = "production";
    rule_.review.approver_users = {"carol"};
    rule_.review.approvals = 1;
    rule_.review.max_wait_ms = 15 * 60'000;
    rule_.review.max_grant_ms = 60 * 60'000;
    bot_.user = "bot";
    bot_.groups = {"agents"};
    bot_.kind = IdentityKind::kAgent;
    carol_.user = "carol";
  }

  ReviewRequest Request(const std::string& method, const std::string& target, const std::string& id = "kg-1") {
    infos_.push_back(std::make_unique<RequestInfo>(*ClassifyRequest(method, target)));
    ReviewRequest r;
    r.who = &bot_;
    r.info = infos_.back().get();
    r.rule = &rule_;
    r.request_id = id;
    r.method = method;
    r.target = target;
    r.started_ms = clock_.NowMillis();
    return r;
  }
  ReviewStage Stage() { return ReviewStage(*svc_, quota_, &events_, clock_); }

  TestDatabase db_{"sqlite"};
  ManualClock clock_{1'795'000'000'000};
  std::unique_ptr<ApprovalService> svc_;
  bool store_down_ = false;
  HoldQuota quota_{2, 3};
  RecordedEvents events_;
  PolicyRule rule_;
  Identity bot_, carol_;
  std::vector<std::unique_ptr<RequestInfo>> infos_;
};

TEST_F(ReviewStageTest, HeldUntilApprovedThenForwardedUnderItsGrant) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold) << s.refusal.message;
  EXPECT_EQ(s.approval_id, "kg-1");
  EXPECT_EQ(s.hold_until_ms, clock_.NowMillis() + 15 * 60'000);
  EXPECT_EQ(quota_.held(), 1);
  EXPECT_EQ(events_.seen, std::vector<std::string>{"new kg-1"});

  clock_.Advance(1000);
  s = stage.Resume(r, std::move(s));  // woken early: still pending
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold);
  EXPECT_EQ(quota_.held(), 1);

  ASSERT_TRUE(svc_->Approve("kg-1", carol_, {.reason = "ok"}));
  clock_.Advance(2000);
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kForward) << s.refusal.message;
  EXPECT_FALSE(s.grant_id.empty());
  EXPECT_EQ(s.approval["state"], "approved");
  EXPECT_EQ(s.approval["waited_ms"], 3000);
  EXPECT_EQ(quota_.held(), 0) << "the hold ends with the held step";

  // The one-use grant is spent: the same request again is a new review.
  ReviewRequest again = Request("GET", "/api/v1/namespaces/prod/secrets/db", "kg-2");
  EXPECT_EQ(stage.Start(again).verdict, ReviewVerdict::kHold);
}

// Shutdown: the held caller is told to retry (503, Retry-After), the
// approval request stays pending for the retry, which joins it and is
// forwarded once approved; a request decided meanwhile is answered as
// decided instead.
TEST_F(ReviewStageTest, AtShutdownAHeldRequestIsHandedOffAndItsRetryJoinsTheSameApproval) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold);
  s = stage.HandOff(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 503);
  EXPECT_EQ(s.refusal.retry_after_seconds, 1);
  EXPECT_NE(s.refusal.message.find("shutting down"), std::string::npos) << s.refusal.message;
  EXPECT_EQ(s.approval["handed_off"], true);
  EXPECT_EQ(ReviewOutcome(s), "handed_off");
  EXPECT_EQ(quota_.held(), 0);
  auto pending = svc_->Get("kg-1");
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->state, ApprovalState::kPending);
  EXPECT_EQ(pending->asked, 0) << "nobody waits on it until the retry comes";

  // The retry (another replica, another request id) joins it.
  ReviewRequest retry = Request("GET", "/api/v1/namespaces/prod/secrets/db", "kg-2");
  ReviewStep t = stage.Start(retry);
  ASSERT_EQ(t.verdict, ReviewVerdict::kHold);
  EXPECT_EQ(t.approval_id, "kg-1");
  EXPECT_EQ(svc_->Get("kg-1")->asked, 1);
  ASSERT_TRUE(svc_->Approve("kg-1", carol_, {.reason = "ok"}));
  t = stage.Resume(retry, std::move(t));
  EXPECT_EQ(t.verdict, ReviewVerdict::kForward) << t.refusal.message;
  EXPECT_EQ(ReviewOutcome(t), "approved");

  // Approved before the hand-off could run: forwarded, not retried.
  ReviewRequest other = Request("GET", "/api/v1/namespaces/prod/secrets/other", "kg-3");
  ReviewStep u = stage.Start(other);
  ASSERT_EQ(u.verdict, ReviewVerdict::kHold);
  ASSERT_TRUE(svc_->Approve("kg-3", carol_, {.reason = "ok"}));
  u = stage.HandOff(other, std::move(u));
  EXPECT_EQ(u.verdict, ReviewVerdict::kForward) << u.refusal.message;
}

TEST_F(ReviewStageTest, NotDecidedInTimeIsRefusedWithTheRulesWait) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold);
  clock_.Set(s.hold_until_ms - 1);
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold) << "one millisecond before the limit it still waits";
  clock_.Set(s.hold_until_ms);
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 403);
  EXPECT_NE(s.refusal.message.find("was not approved within 15m"), std::string::npos) << s.refusal.message;
  EXPECT_NE(s.refusal.message.find("(rule \"prod-delete\": production)"), std::string::npos) << s.refusal.message;
  EXPECT_EQ(s.approval["state"], "expired");
  EXPECT_EQ(events_.seen.back(), "expired kg-1");
  EXPECT_EQ(quota_.held(), 0);
  // Approving afterwards changes nothing.
  EXPECT_FALSE(svc_->Approve("kg-1", carol_, {}));
}

TEST_F(ReviewStageTest, DeniedNamesWhoAndWhy) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  ASSERT_TRUE(svc_->Deny("kg-1", carol_, "not during the freeze"));
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_NE(s.refusal.message.find("was denied by carol: not during the freeze"), std::string::npos);
}

TEST_F(ReviewStageTest, TwinsShareOneApprovalAndEachNeedsAUseOfItsGrant) {
  ReviewStage stage = Stage();
  ReviewRequest first = Request("GET", "/api/v1/namespaces/prod/secrets/db", "kg-1");
  ReviewRequest twin = Request("GET", "/api/v1/namespaces/prod/secrets/db", "kg-2");
  ReviewStep a = stage.Start(first);
  ReviewStep b = stage.Start(twin);
  ASSERT_EQ(b.verdict, ReviewVerdict::kHold);
  EXPECT_EQ(b.approval_id, "kg-1") << "the twin joins the pending request";
  EXPECT_EQ(events_.seen.size(), 1u) << "a joined twin is no new request";
  ASSERT_TRUE(svc_->Approve("kg-1", carol_, {}));  // no time given: one use
  a = stage.Resume(first, std::move(a));
  b = stage.Resume(twin, std::move(b));
  EXPECT_EQ(a.verdict, ReviewVerdict::kForward);
  ASSERT_EQ(b.verdict, ReviewVerdict::kRefuse);
  EXPECT_NE(b.refusal.message.find("has no use left"), std::string::npos) << b.refusal.message;
}

TEST_F(ReviewStageTest, HoldQuotaPerCallerAnswers429) {
  ReviewStage stage = Stage();
  ReviewRequest ra = Request("GET", "/api/v1/namespaces/prod/secrets/a", "kg-1");
  ReviewStep a = stage.Start(ra);
  ReviewStep b = stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/b", "kg-2"));
  ReviewStep c = stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/c", "kg-3"));
  EXPECT_EQ(a.verdict, ReviewVerdict::kHold);
  EXPECT_EQ(b.verdict, ReviewVerdict::kHold);
  ASSERT_EQ(c.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(c.refusal.http_code, 429);
  EXPECT_EQ(svc_->Get("kg-3")->state, ApprovalState::kWithdrawn) << "nobody waits on a refused request";
  a = stage.Withdraw(ra, std::move(a), "the caller left");  // a hold ends: room for one more
  EXPECT_EQ(stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/d", "kg-4")).verdict, ReviewVerdict::kHold);
}

// Replicas share one store: a caller's requests held on other replicas
// count against the same per-caller limit.
TEST_F(ReviewStageTest, HoldQuotasCountTheRequestsHeldOnEveryReplica) {
  ReviewStage here = Stage();
  HoldQuota other_quota{2, 3};
  auto other_db = ApprovalService::OpenDatabase(db_.Connect());
  ASSERT_TRUE(other_db);
  ApprovalService other_svc(std::move(*other_db), clock_);
  other_svc.SetInstance("other-replica");
  ReviewStage there(other_svc, other_quota, nullptr, clock_);
  ReviewStep a = here.Start(Request("GET", "/api/v1/namespaces/prod/secrets/a", "kg-1"));
  ReviewStep b = there.Start(Request("GET", "/api/v1/namespaces/prod/secrets/b", "kg-2"));
  ASSERT_EQ(a.verdict, ReviewVerdict::kHold);
  ASSERT_EQ(b.verdict, ReviewVerdict::kHold);
  ReviewStep c = here.Start(Request("GET", "/api/v1/namespaces/prod/secrets/c", "kg-3"));
  ASSERT_EQ(c.verdict, ReviewVerdict::kRefuse) << "each process holds fewer than 2, the store 3";
  EXPECT_EQ(c.refusal.http_code, 429);
  EXPECT_NE(c.refusal.message.find("across the gateway's replicas"), std::string::npos) << c.refusal.message;
  // A twin of a request already pending adds no distinct request.
  ReviewStep twin = here.Start(Request("GET", "/api/v1/namespaces/prod/secrets/b", "kg-5"));
  EXPECT_EQ(twin.verdict, ReviewVerdict::kHold) << twin.refusal.message;
  EXPECT_EQ(twin.approval_id, "kg-2");
}

TEST_F(ReviewStageTest, AskOnlyRuleAnswersAtOnceWithInstructions) {
  rule_.review.hold = false;
  ReviewStage stage = Stage();
  ReviewStep s = stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/db"));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 403);
  EXPECT_NE(s.refusal.message.find("kg-1"), std::string::npos) << s.refusal.message;
  EXPECT_EQ(s.approval["state"], "pending");
  EXPECT_EQ(quota_.held(), 0);
}

TEST_F(ReviewStageTest, WithdrawnRequestCanNeverRunLater) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  s = stage.Withdraw(r, std::move(s), "the caller closed its connection");
  EXPECT_EQ(s.verdict, ReviewVerdict::kWithdrawn);
  EXPECT_EQ(s.approval["state"], "withdrawn");
  EXPECT_EQ(quota_.held(), 0);
  EXPECT_FALSE(svc_->Approve("kg-1", carol_, {}));
}

TEST_F(ReviewStageTest, ARequestWhoseTokenEndedWhileHeldIsRefusedAndCanNeverRunLater) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  s = stage.Cancel(r, std::move(s), "the task token for task T-1 (cr-1) was revoked or expired",
                   Error::Unauthorized("nothing was done"));
  EXPECT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 401);
  EXPECT_EQ(s.approval["state"], "withdrawn");
  EXPECT_NE(s.approval.dump().find("T-1"), std::string::npos) << s.approval.dump();
  EXPECT_EQ(quota_.held(), 0);
  EXPECT_FALSE(svc_->Approve("kg-1", carol_, {}));
}

TEST_F(ReviewStageTest, WritesAskForTheApproversDryRunFirstAndKeepItsNote) {
  ReviewStage stage = Stage();
  std::string body = R"({"propagationPolicy":"Background"})";
  ReviewRequest r = Request("DELETE", "/api/v1/namespaces/prod");
  r.dry_run_possible = true;
  r.body = &body;
  r.content_type = "application/json";
  ReviewStep s = stage.Start(r);
  ASSERT_EQ(s.verdict, ReviewVerdict::kDryRunFirst);
  EXPECT_EQ(quota_.held(), 0) << "nothing is held before the dry run";
  s = stage.Ask(r, {{"summary", "would delete namespace prod"}});
  ASSERT_EQ(s.verdict, ReviewVerdict::kHold);
  auto stored = svc_->Get("kg-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->dry_run["summary"], "would delete namespace prod");
  EXPECT_FALSE(stored->body_sha256.empty()) << "the approval is bound to the body";
}

TEST_F(ReviewStageTest, ExecUnderReviewMustNameItsContainer) {
  ReviewStage stage = Stage();
  ReviewStep s = stage.Start(Request("POST", "/api/v1/namespaces/prod/pods/db/exec?command=sh&stdin=true"));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 400);
  EXPECT_TRUE(svc_->List(std::nullopt)->empty()) << "nothing was opened";
}

TEST_F(ReviewStageTest, PolicyApproverForwardsAtOnce) {
  AutoApprover auto_approver;
  auto_approver.name = "office-hours";
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  r.auto_approver = &auto_approver;
  ReviewStep s = stage.Start(r);
  ASSERT_EQ(s.verdict, ReviewVerdict::kForward);
  EXPECT_EQ(s.approval["state"], "approved");
  EXPECT_EQ(s.approval["by_policy"], true);
}

TEST_F(ReviewStageTest, StoreDownIsRefusedNotForwarded) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep held = stage.Start(r);
  ASSERT_EQ(held.verdict, ReviewVerdict::kHold);
  store_down_ = true;
  ReviewStep s = stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/other", "kg-2"));
  ASSERT_EQ(s.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(s.refusal.http_code, 503);
  // The held one waits on while the store may come back, then is refused.
  held = stage.Resume(r, std::move(held));
  EXPECT_EQ(held.verdict, ReviewVerdict::kHold);
  clock_.Set(held.hold_until_ms + ReviewStage::kStoreGraceMs + 1);
  held = stage.Resume(r, std::move(held));
  ASSERT_EQ(held.verdict, ReviewVerdict::kRefuse);
  EXPECT_EQ(held.refusal.http_code, 403);
}

TEST_F(ReviewStageTest, StreamsEndWhenTheirGrantExpiresOrIsRevoked) {
  rule_.review.default_grant_ms = 10 * 60'000;
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/pods/db/exec?command=sh&container=c&stdin=true");
  ReviewStep s = stage.Start(r);
  ASSERT_TRUE(svc_->Approve("kg-1", carol_, {}));
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kForward);
  EXPECT_EQ(stage.SessionEnds(s.grant_id, s.grant_expires_ms), std::nullopt);
  clock_.Set(s.grant_expires_ms);
  EXPECT_EQ(stage.SessionEnds(s.grant_id, s.grant_expires_ms),
            "session closed by kubegate: grant " + s.grant_id + " expired");
  clock_.Set(s.grant_expires_ms - 1);
  ASSERT_TRUE(svc_->Revoke(s.grant_id, carol_, "done"));
  EXPECT_EQ(stage.SessionEnds(s.grant_id, s.grant_expires_ms),
            "session closed by kubegate: grant " + s.grant_id + " was revoked by carol: done");
}

TEST_F(ReviewStageTest, EveryCommittedChangeWakesItsWaiters) {
  WakeUps wake;
  svc_->SetChangeListener([&wake](const std::string& id) { wake.Notify(id); });
  int approval_woken = 0, grant_woken = 0, other_woken = 0;
  auto a = wake.Subscribe("kg-1", [&] { ++approval_woken; });
  auto o = wake.Subscribe("kg-9", [&] { ++other_woken; });
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  rule_.review.default_grant_ms = 60'000;
  ReviewStep s = stage.Start(r);
  EXPECT_EQ(approval_woken, 0) << "opening wakes nobody";
  ASSERT_TRUE(svc_->Approve("kg-1", carol_, {}));
  EXPECT_EQ(approval_woken, 1);
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kForward);
  auto g = wake.Subscribe(s.grant_id, [&] { ++grant_woken; });
  ASSERT_TRUE(svc_->Revoke(s.grant_id, carol_, ""));
  EXPECT_EQ(grant_woken, 1);
  EXPECT_EQ(other_woken, 0);
  // A refused change (already decided) wakes nobody new... but a commit does.
  EXPECT_FALSE(svc_->Deny("kg-1", carol_, "late"));
  a.Reset();
  ASSERT_TRUE(svc_->Open({"kg-5", &bot_, infos_.back().get(), &rule_, {}}));
  EXPECT_EQ(approval_woken, 1) << "no callback after its subscription ended";
}

TEST_F(ReviewStageTest, ChangesMadeByAnotherProcessAreFoundByTheSweep) {
  ReviewStage stage = Stage();
  ReviewRequest r = Request("GET", "/api/v1/namespaces/prod/secrets/db");
  ReviewStep s = stage.Start(r);
  ReviewStep other = stage.Start(Request("GET", "/api/v1/namespaces/prod/secrets/x", "kg-2"));
  // Another gateway process decides on the same store; this one hears nothing.
  ApprovalService elsewhere(std::move(*ApprovalService::OpenDatabase(db_.Connect())), clock_);
  ASSERT_TRUE(elsewhere.Approve("kg-1", carol_, {}));
  auto changed = svc_->ChangedAmong({"kg-1", "kg-2"});
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, std::vector<std::string>{"kg-1"});
  s = stage.Resume(r, std::move(s));
  ASSERT_EQ(s.verdict, ReviewVerdict::kForward);
  rule_.review.default_grant_ms = 60'000;
  ASSERT_TRUE(elsewhere.Revoke(s.grant_id, carol_, ""));
  changed = svc_->ChangedAmong({s.grant_id, "kg-2"});
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, std::vector<std::string>{s.grant_id});
  // Runtime identities' keys are not approvals: never "changed" here.
  changed = svc_->ChangedAmong({"user:alice", "credential:cr-1"});
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->empty());
}

TEST(WakeUpsTest, NotifyCallsOnlyLiveSubscriptionsOfThatKey) {
  WakeUps w;
  int a = 0, b = 0;
  auto s1 = w.Subscribe("kg-1", [&] { ++a; });
  auto s2 = w.Subscribe("kg-1", [&] { ++a; });
  auto s3 = w.Subscribe("gr-1", [&] { ++b; });
  EXPECT_EQ(w.Notify("kg-1"), 2u);
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(w.Watched(), (std::vector<std::string>{"gr-1", "kg-1"}));
  s1.Reset();
  WakeUps::Subscription moved = std::move(s2);
  EXPECT_EQ(w.Notify("kg-1"), 1u);
  moved = WakeUps::Subscription();
  EXPECT_EQ(w.Notify("kg-1"), 0u);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.Watched(), std::vector<std::string>{"gr-1"}) << "a key nobody waits on is gone";
  // Many on one key (every stream of one user), ended in any order.
  std::vector<WakeUps::Subscription> many;
  int c = 0;
  for (int i = 0; i < 1000; ++i) many.push_back(w.Subscribe("user:bot", [&] { ++c; }));
  for (int i = 0; i < 1000; i += 2) many[i].Reset();
  EXPECT_EQ(w.Notify("user:bot"), 500u);
  EXPECT_EQ(c, 500);
  EXPECT_EQ(w.size(), 501u);
}

TEST(HoldQuotaTest, PerCallerAndTotalLimits) {
  HoldQuota q(2, 3);
  auto a1 = q.TryHold("a"), a2 = q.TryHold("a");
  EXPECT_TRUE(a1 && a2);
  EXPECT_FALSE(q.TryHold("a")) << "per caller";
  auto b1 = q.TryHold("b");
  EXPECT_TRUE(b1);
  EXPECT_FALSE(q.TryHold("c")) << "in total";
  EXPECT_EQ(q.held(), 3);
  a1.reset();
  EXPECT_TRUE(q.TryHold("c"));
  EXPECT_EQ(q.held(), 2) << "the ticket just made went at once";
}

}  // namespace
}  // namespace kubegate
