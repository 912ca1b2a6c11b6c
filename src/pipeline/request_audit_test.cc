// The request's audit records, built from its context and submitted to an
// AuditSink: what each exit writes, and that a refused commit is reported.
#include "pipeline/request_audit.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

class RecordingSink : public AuditSink {
 public:
  bool Submit(AuditEntry entry, Done done) override {
    submitted_now++;
    return Take(std::move(entry), std::move(done));
  }
  bool SubmitLater(AuditEntry entry, Done done) override {
    submitted_later++;
    return Take(std::move(entry), std::move(done));
  }
  bool Take(AuditEntry entry, Done done) {
    if (full) return false;
    entries.push_back(nlohmann::json::parse(entry.canonical));
    if (done) done(refuse ? Result<bool>(Error::Unavailable("disk full")) : Result<bool>(true));
    return true;
  }
  bool healthy() const override { return !refuse; }
  std::vector<nlohmann::json> entries;
  bool full = false, refuse = false;
  int submitted_now = 0, submitted_later = 0;
};

RequestContext Context() {
  RequestContext ctx;
  ctx.request_id = "kg-1";
  ctx.received_ms = 1'795'000'000'000;
  ctx.method = "DELETE";
  ctx.target = "/api/v1/namespaces/prod";
  Identity who;
  who.user = "bot";
  who.kind = IdentityKind::kAgent;
  ctx.who = who;
  ctx.info = *ClassifyRequest(ctx.method, ctx.target);
  ctx.action = "review";
  ctx.rule = "prod-namespaces";
  ctx.upstream_identity = {{"Impersonate-User", "bot"},
                           {"Impersonate-Group", "agents"},
                           {"Impersonate-Group", "system:authenticated"},
                           {"Impersonate-Extra-Kubegate-Request-Id", "kg-1"}};
  return ctx;
}

TEST(RequestAuditTest, DecisionIsCommittedBeforeForwardingAndTheResultFollows) {
  RecordingSink sink;
  ManualClock clock(1'795'000'000'250);
  RequestAudit audit(sink, clock);
  RequestContext ctx = Context();
  std::string not_committed = "unset";
  audit.CommitDecision(ctx, [&](std::string why) { not_committed = std::move(why); });
  EXPECT_EQ(not_committed, "");
  Outcome o;
  o.status = 200;
  audit.RecordResult(ctx, o, "");
  ASSERT_EQ(sink.entries.size(), 2u);
  const auto& d = sink.entries[0];
  EXPECT_EQ(d["decision"]["action"], "review");
  EXPECT_EQ(d["identity"]["user"], "bot");
  EXPECT_EQ(d["upstream_identity"]["Impersonate-Group"], "agents,system:authenticated") << d.dump();
  EXPECT_FALSE(d["upstream_identity"].contains("Impersonate-Extra-Kubegate-Request-Id"));
  EXPECT_EQ(sink.entries[1]["status"], 200);
  EXPECT_EQ(sink.entries[1]["duration_ms"], 250);
}

// With a wake scheduler (a worker's loop), entries are queued without
// waking the writer, and the scheduler is told after each one taken.
TEST(RequestAuditTest, WithAWakeSchedulerEntriesWaitForOneWakeUp) {
  RecordingSink sink;
  int scheduled = 0;
  RequestAudit audit(sink, SystemClock(), [&] { scheduled++; });
  RequestContext ctx = Context();
  std::string not_committed = "unset";
  audit.CommitDecision(ctx, [&](std::string why) { not_committed = std::move(why); });
  audit.RecordResult(ctx, Outcome{}, "");
  EXPECT_EQ(not_committed, "");
  EXPECT_EQ(sink.submitted_later, 2);
  EXPECT_EQ(sink.submitted_now, 0);
  EXPECT_EQ(scheduled, 2);
  sink.full = true;  // not taken: nothing to wake the writer for
  audit.RecordResult(ctx, Outcome{}, "");
  EXPECT_EQ(scheduled, 2);

  RecordingSink plain;
  RequestAudit direct(plain, SystemClock());
  direct.RecordAnswered(ctx, Outcome{}, "");
  EXPECT_EQ(plain.submitted_now, 2);
  EXPECT_EQ(plain.submitted_later, 0);
}

TEST(RequestAuditTest, RefusedOrFullStoreIsReportedSoNothingIsForwarded) {
  RecordingSink sink;
  RequestAudit audit(sink, SystemClock());
  RequestContext ctx = Context();
  sink.refuse = true;
  std::string why;
  audit.CommitDecision(ctx, [&](std::string w) { why = std::move(w); });
  EXPECT_EQ(why, "disk full");
  sink.refuse = false;
  sink.full = true;
  audit.CommitDecision(ctx, [&](std::string w) { why = std::move(w); });
  EXPECT_NE(why.find("audit queue is full"), std::string::npos) << why;
}

TEST(RequestAuditTest, AnsweredRequestsGetBothRecords) {
  RecordingSink sink;
  RequestAudit audit(sink, SystemClock());
  RequestContext ctx = Context();
  ctx.action = "deny";
  ctx.rule = "authentication";
  ctx.message = "invalid bearer token";
  Outcome o;
  o.status = 401;
  audit.RecordAnswered(ctx, o, ctx.message);
  ASSERT_EQ(sink.entries.size(), 2u);
  EXPECT_EQ(sink.entries[0]["decision"]["rule"], "authentication");
  EXPECT_EQ(sink.entries[1]["error"], "invalid bearer token");
}

TEST(RequestAuditTest, NullSinkBuildsNothingAndCountsEveryDecisionCommitted) {
  NullAuditSink sink;
  RequestAudit audit(sink, SystemClock());
  std::string why = "unset";
  audit.CommitDecision(Context(), [&](std::string w) { why = std::move(w); });
  EXPECT_EQ(why, "");
}

}  // namespace
}  // namespace kubegate
