#include "approval/dry_run_request.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kubegate {
namespace {

struct Case {
  const char* name;
  OwnRequest held;
};

// Every reviewable write kubectl (or a client) sends, with and without a
// caller body: its dry run reads as a dry run of the same action.
TEST(ApproversDryRun, EveryReviewableWriteReadsAsADryRunOfTheSameAction) {
  const Case cases[] = {
      {"create", {"POST", "/api/v1/namespaces/ns/configmaps?fieldManager=kubectl-create", "application/json", "{}"}},
      {"update", {"PUT", "/api/v1/namespaces/ns/configmaps/c", "application/json", "{}"}},
      {"merge patch", {"PATCH", "/api/v1/namespaces/ns/configmaps/c", "application/merge-patch+json", "{}"}},
      {"json patch", {"PATCH", "/api/v1/namespaces/ns/configmaps/c", "application/json-patch+json", "[]"}},
      {"strategic patch", {"PATCH", "/api/v1/namespaces/ns/configmaps/c", "application/strategic-merge-patch+json", "{}"}},
      {"apply patch", {"PATCH", "/api/v1/namespaces/ns/configmaps/c?fieldManager=kubectl&force=true",
                       "application/apply-patch+yaml", "a: b"}},
      {"delete, kubectl's body", {"DELETE", "/api/v1/namespaces/prod", "application/json", R"({"propagationPolicy":"Background"})"}},
      {"delete, no body", {"DELETE", "/api/v1/namespaces/prod", "", ""}},
      {"delete, body and a query dryRun", {"DELETE", "/api/v1/namespaces/prod?dryRun=All", "", R"({"gracePeriodSeconds":0})"}},
      {"deletecollection, body", {"DELETE", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dold", "application/json",
                                  R"({"propagationPolicy":"Background"})"}},
      {"deletecollection, no body", {"DELETE", "/api/v1/namespaces/ns/pods", "", ""}},
      {"delete, caller's empty dryRun list", {"DELETE", "/api/v1/namespaces/prod", "", R"({"dryRun":[]})"}},
      {"delete, a key a case-insensitive decoder reads as dryRun", {"DELETE", "/api/v1/namespaces/prod", "",
                                                                   R"({"dryrun":[],"DRYRUN":["x"]})"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto original = ClassifyOwnRequest(c.held);
    ASSERT_TRUE(original);
    EXPECT_FALSE(original->dry_run);
    auto dr = BuildApproversDryRun(c.held);
    ASSERT_TRUE(dr) << dr.error().message;
    EXPECT_TRUE(dr->info.dry_run);
    EXPECT_EQ(dr->info.verb, original->verb);
    EXPECT_EQ(dr->info.name, original->name);
    EXPECT_EQ(dr->info.namespace_, original->namespace_);
    // What is sent reads the same way again (the check is on the bytes).
    auto again = ClassifyOwnRequest(dr->request);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->dry_run);
    if (original->verb == "delete" || original->verb == "deletecollection") {
      auto body = nlohmann::json::parse(dr->request.body);
      EXPECT_EQ(body["dryRun"], nlohmann::json::array({"All"}));
      int dry_keys = 0;
      for (auto& [k, v] : body.items()) dry_keys += (k.size() == 6 && (k[0] == 'd' || k[0] == 'D'));
      EXPECT_EQ(dry_keys, 1) << dr->request.body;
      EXPECT_EQ(dr->request.content_type, "application/json");
      EXPECT_EQ(dr->request.target, c.held.target) << "the query is ignored once there is a body";
    } else {
      EXPECT_EQ(dr->request.body, c.held.body);
      EXPECT_EQ(dr->request.content_type, c.held.content_type);
    }
  }
}

TEST(ApproversDryRun, KubectlsDeleteKeepsItsOptionsAndGainsDryRunInTheBody) {
  auto dr = BuildApproversDryRun({"DELETE", "/api/v1/namespaces/prod", "application/json",
                                  R"({"propagationPolicy":"Background"})"});
  ASSERT_TRUE(dr);
  EXPECT_EQ(dr->request.body, R"({"dryRun":["All"],"propagationPolicy":"Background"})");
  EXPECT_EQ(dr->request.target, "/api/v1/namespaces/prod");
}

// The old builder appended ?dryRun=All and kept kubectl's body: the API
// server then deletes for real. That request must never read as a dry run.
TEST(ApproversDryRun, AQueryDryRunBesideABodyIsNotADryRun) {
  auto info = ClassifyOwnRequest({"DELETE", "/api/v1/namespaces/prod?dryRun=All", "application/json",
                                  R"({"propagationPolicy":"Background"})"});
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->dry_run);
}

TEST(ApproversDryRun, RefusedWhereItCannotBeMadeSafely) {
  const Case refused[] = {
      {"protobuf DeleteOptions", {"DELETE", "/api/v1/namespaces/prod", "application/vnd.kubernetes.protobuf", "k8s\0"}},
      {"DeleteOptions not an object", {"DELETE", "/api/v1/namespaces/prod", "application/json", "[1]"}},
      {"DeleteOptions not JSON", {"DELETE", "/api/v1/namespaces/prod", "application/json", "{"}},
      {"caller's own dryRun value in the query", {"POST", "/api/v1/namespaces/ns/configmaps?dryRun=Some", "application/json", "{}"}},
      {"caller's empty dryRun in the query", {"PATCH", "/api/v1/namespaces/ns/configmaps/c?dryRun=", "application/merge-patch+json", "{}"}},
      {"exec (connect runs for real)", {"POST", "/api/v1/namespaces/ns/pods/p/exec?command=sh", "", ""}},
      {"proxy", {"POST", "/api/v1/namespaces/ns/pods/p/proxy/x", "", ""}},
      {"a read", {"GET", "/api/v1/namespaces/ns/secrets", "", ""}},
  };
  for (const auto& c : refused) {
    SCOPED_TRACE(c.name);
    auto dr = BuildApproversDryRun(c.held);
    EXPECT_FALSE(dr);
  }
}

}  // namespace
}  // namespace kubegate
