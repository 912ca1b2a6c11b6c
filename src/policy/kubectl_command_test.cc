#include "policy/kubectl_command.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

std::string Read(std::vector<std::string> argv) {
  auto r = KubectlToRequest(argv, "default");
  return r ? r->method + " " + r->target : "error: " + r.error().message;
}

TEST(KubectlToRequest, ReadsCommonCommandsAsTheirRequests) {
  EXPECT_EQ(Read({"kubectl", "delete", "ns", "prod"}), "DELETE /api/v1/namespaces/prod");
  EXPECT_EQ(Read({"kubectl", "get", "secret", "db", "-n", "prod"}), "GET /api/v1/namespaces/prod/secrets/db");
  EXPECT_EQ(Read({"kubectl", "get", "pods", "-A"}), "GET /api/v1/pods");
  EXPECT_EQ(Read({"kubectl", "delete", "deploy/web", "--namespace=x", "--dry-run=server"}),
            "DELETE /apis/apps/v1/namespaces/x/deployments/web?dryRun=All");
  EXPECT_EQ(Read({"kubectl", "exec", "-n", "prod", "web", "-c", "app", "--", "sh", "-c", "echo a b"}),
            "POST /api/v1/namespaces/prod/pods/web/exec?container=app&command=sh&command=-c&command=echo%20a%20b&stdout=true&stderr=true");
  EXPECT_EQ(Read({"kubectl", "port-forward", "web", "8080:80"}), "POST /api/v1/namespaces/default/pods/web/portforward?ports=80");
  EXPECT_EQ(Read({"kubectl", "delete", "crd", "widgets.example.com"}),
            "DELETE /apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com");
  EXPECT_EQ(Read({"kubectl", "scale", "deployment", "web", "-n", "x"}), "PATCH /apis/apps/v1/namespaces/x/deployments/web/scale");
  EXPECT_NE(Read({"kubectl", "delete", "widgets", "w"}).find("does not know resource"), std::string::npos);
  EXPECT_NE(Read({"kubectl", "delete", "ns", "x", "--dry-run=client"}).find("never reaches"), std::string::npos);
  auto as = KubectlToRequest({"kubectl", "--as", "root", "get", "pods"}, "default");
  ASSERT_TRUE(as);
  EXPECT_TRUE(as->impersonation);
}

}  // namespace
}  // namespace kubegate
