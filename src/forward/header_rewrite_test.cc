#include "forward/header_rewrite.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

TEST(HeaderRewrite, StripsCredentialsAndImpersonation) {
  for (const char* h : {"Authorization", "authorization", "Proxy-Authorization", "Impersonate-User", "impersonate-group",
                        "Impersonate-Uid", "Impersonate-Extra-scopes", "IMPERSONATE-EXTRA-x", "X-Remote-User",
                        "x-remote-group", "X-Remote-Extra-Foo", "Impersonate-Whatever"}) {
    EXPECT_TRUE(IsCredentialHeader(h)) << h;
  }
  for (const char* h : {"Accept", "User-Agent", "Kubectl-Command", "Upgrade", "Connection", "Sec-WebSocket-Key",
                        "X-Stream-Protocol-Version", "X-Remote", "Content-Type"}) {
    EXPECT_FALSE(IsCredentialHeader(h)) << h;
  }
  EXPECT_TRUE(IsImpersonationHeader("Impersonate-Extra-a"));
  EXPECT_FALSE(IsImpersonationHeader("Authorization"));
}

TEST(HeaderRewrite, AddsCallerIdentityAndRequestId) {
  Identity who{"alice", {"dev", "ops"}, IdentityKind::kHuman, AuthMethod::kBearerToken, false};
  auto h = ImpersonationHeaders(who, "kg-1", true);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h[0], (std::pair<std::string, std::string>{"Impersonate-User", "alice"}));
  EXPECT_EQ(h[1], (std::pair<std::string, std::string>{"Impersonate-Group", "dev"}));
  EXPECT_EQ(h[2], (std::pair<std::string, std::string>{"Impersonate-Group", "ops"}));
  EXPECT_EQ(h[3], (std::pair<std::string, std::string>{"Impersonate-Extra-Kubegate-Request-Id", "kg-1"}));
  EXPECT_EQ(h[4], (std::pair<std::string, std::string>{"Impersonate-Extra-Kubegate-Auth-Method", "bearer-token"}));
  who.method = AuthMethod::kOidc;
  EXPECT_EQ(ImpersonationHeaders(who, "kg-1", true)[4].second, "oidc");
  EXPECT_TRUE(ImpersonationHeaders(who, "kg-1", false).empty());
}

}  // namespace
}  // namespace kubegate

namespace kubegate {
namespace {

// Issue 11: `Connection: Upgrade, Impersonate-User` once reached the
// upstream verbatim; a hop that honours it would strip kubegate's own
// Impersonate-* and the request would run as the gateway.
TEST(HeaderRewrite, ConnectionListedHeadersAreHopByHop) {
  EXPECT_EQ(ConnectionListedHeaders("Upgrade, Impersonate-User,Impersonate-Group"),
            (std::vector<std::string>{"impersonate-user", "impersonate-group"}));
  EXPECT_EQ(ConnectionListedHeaders(" keep-alive ,\tX-Foo , close, x-foo,"), (std::vector<std::string>{"x-foo"}));
  EXPECT_TRUE(ConnectionListedHeaders("upgrade").empty());
  EXPECT_TRUE(ConnectionListedHeaders("").empty());
}

}  // namespace
}  // namespace kubegate
