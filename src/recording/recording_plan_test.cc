#include "recording/recording_plan.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

RecordingSettings Settings(bool enabled) {
  RecordingSettings s;
  s.enabled = enabled;
  s.max_bytes = 100;
  return s;
}

RequestInfo Info(const std::string& method, const std::string& target) { return *ClassifyRequest(method, target); }

TEST(RecordingPlanTest, OffUnlessEnabledOrRequired) {
  RequestInfo exec = Info("GET", "/api/v1/namespaces/prod/pods/db/exec?command=sh&container=c&tty=true");
  RecordedSession s{"kg-1", "bob", &exec, "", ""};
  EXPECT_FALSE(PlanRecording(Settings(false), "/rec", nullptr, s));
  PolicyRule rule;
  rule.name = "prod-exec";
  EXPECT_FALSE(PlanRecording(Settings(false), "/rec", &rule, s));
  rule.recording_required = true;
  auto p = PlanRecording(Settings(false), "/rec", &rule, s);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->required);
  EXPECT_EQ(p->path, "/rec/kg-1.cast");
  EXPECT_EQ(p->header.kind, "exec");
  EXPECT_EQ(p->header.container, "c");
  EXPECT_EQ(p->header.command, std::vector<std::string>{"sh"});
  EXPECT_TRUE(p->header.tty);
  EXPECT_EQ(p->options.max_bytes, 100u);
}

TEST(RecordingPlanTest, StdinModeAndPortForwardFromTheRule) {
  RequestInfo pf = Info("GET", "/api/v1/namespaces/prod/pods/db/portforward?ports=5432");
  RecordedSession s{"kg-2", "bob", &pf, "kg-1", "gr-1"};
  PolicyRule rule;
  rule.recording_stdin = PolicyRule::Stdin::kRedact;
  rule.recording_portforward_payload = true;
  auto p = PlanRecording(Settings(true), "/rec", &rule, s);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->required);
  EXPECT_EQ(p->path, "/rec/kg-2.portforward.jsonl");
  EXPECT_EQ(p->header.kind, "portforward");
  EXPECT_EQ(p->options.stdin_mode, StdinMode::kRedact);
  EXPECT_TRUE(p->options.portforward_payload);
  EXPECT_EQ(p->header.approval_id, "kg-1");
  EXPECT_EQ(p->header.grant_id, "gr-1");
}

TEST(RecordingPlanTest, PlainRequestsAreNeverRecorded) {
  RequestInfo get = Info("GET", "/api/v1/namespaces/prod/pods/db");
  EXPECT_FALSE(PlanRecording(Settings(true), "/rec", nullptr, {"kg-3", "bob", &get, "", ""}));
}

}  // namespace
}  // namespace kubegate
