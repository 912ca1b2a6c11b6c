#include "pipeline/admission.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

Identity Alice(bool may_impersonate) {
  return Identity{"alice", {}, IdentityKind::kHuman, AuthMethod::kBearerToken, may_impersonate};
}

TEST(Admission, DiscoveryPaths) {
  for (const char* p : {"/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/openapi/v2", "/openapi/v3",
                        "/openapi/v3/api/v1", "/version"}) {
    EXPECT_TRUE(IsDiscoveryRequest(*ClassifyRequest("GET", p))) << p;
  }
  for (const char* p : {"/api/v1/pods", "/apis/apps/v1/deployments", "/healthz", "/metrics", "/apiz", "/logs"}) {
    EXPECT_FALSE(IsDiscoveryRequest(*ClassifyRequest("GET", p))) << p;
  }
  EXPECT_FALSE(IsDiscoveryRequest(*ClassifyRequest("POST", "/api")));
}

TEST(Admission, ImpersonationRefusedUnlessAllowed) {
  Admission adm{Config{}};
  auto info = *ClassifyRequest("GET", "/api/v1/namespaces/default/pods");
  Decision d = adm.Decide(Alice(false), info, true);
  EXPECT_EQ(d.action, Decision::Action::kDeny);
  EXPECT_NE(d.message.find("may not impersonate"), std::string::npos);
  Decision ok = adm.Decide(Alice(true), info, true);
  EXPECT_EQ(ok.action, Decision::Action::kAllow);
  EXPECT_TRUE(ok.pass_caller_impersonation);
  Decision plain = adm.Decide(Alice(false), info, false);
  EXPECT_EQ(plain.action, Decision::Action::kAllow);
  EXPECT_FALSE(plain.pass_caller_impersonation);
}

TEST(Admission, DiscoveryNeverRefused) {
  Admission adm{Config{}};
  Decision d = adm.Decide(Alice(false), *ClassifyRequest("GET", "/apis"), true);
  EXPECT_EQ(d.action, Decision::Action::kAllow);
  EXPECT_FALSE(d.pass_caller_impersonation);
}

TEST(Admission, RequestIdsAreUnique) {
  std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 3u + 12u + 20u);
  EXPECT_EQ(a.substr(0, 3), "kg-");
}

}  // namespace
}  // namespace kubegate
