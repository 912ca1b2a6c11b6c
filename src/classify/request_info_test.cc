// Table test: each row is what kube-apiserver's RequestInfoFactory (v1.32)
// yields for a method and request target, per WIRE.md §9 and
// k8s.io/apiserver/pkg/endpoints/request/requestinfo.go.
#include "classify/request_info.h"
#include "classify/go_duration.h"

#include <gtest/gtest.h>

namespace kubegate {
namespace {

struct Case {
  const char* method;
  const char* target;
  // "ERR" for a 400; "NR <verb> <path>" for a non-resource request;
  // otherwise "verb group version namespace resource subresource name" with
  // "-" for an empty field.
  const char* want;
};

std::string Dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Describe(const Result<RequestInfo>& r) {
  if (!r) return "ERR";
  const RequestInfo& i = *r;
  if (!i.is_resource_request) return "NR " + Dash(i.verb) + " " + Dash(i.path);
  return Dash(i.verb) + " " + Dash(i.api_group) + " " + Dash(i.api_version) + " " + Dash(i.namespace_) + " " +
         Dash(i.resource) + " " + Dash(i.subresource) + " " + Dash(i.name);
}

const Case kCases[] = {
    // Core group, namespaced collections and objects.
    {"GET", "/api/v1/namespaces/default/pods", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?limit=500", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods/p1", "get - v1 default pods - p1"},
    {"HEAD", "/api/v1/namespaces/default/pods/p1", "get - v1 default pods - p1"},
    {"POST", "/api/v1/namespaces/default/pods", "create - v1 default pods - -"},
    {"PUT", "/api/v1/namespaces/default/pods/p1", "update - v1 default pods - p1"},
    {"PATCH", "/api/v1/namespaces/default/pods/p1", "patch - v1 default pods - p1"},
    {"DELETE", "/api/v1/namespaces/default/pods/p1", "delete - v1 default pods - p1"},
    {"DELETE", "/api/v1/namespaces/default/pods", "deletecollection - v1 default pods - -"},
    {"GET", "/api/v1/pods", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods?watch=true", "watch - v1 - pods - -"},
    {"GET", "/api/v1/nodes/n1", "get - v1 - nodes - n1"},
    {"GET", "/api/v1/nodes/n1/status", "get - v1 - nodes status n1"},
    {"GET", "/api/v1/nodes/n1/proxy/metrics", "get - v1 - nodes proxy n1"},
    {"GET", "/api/v1/persistentvolumes/pv1", "get - v1 - persistentvolumes - pv1"},
    {"DELETE", "/api/v1/persistentvolumes/pv1", "delete - v1 - persistentvolumes - pv1"},
    {"GET", "/api/v1/namespaces/kube-system/secrets/s1", "get - v1 kube-system secrets - s1"},
    {"GET", "/api/v1/namespaces/kube-system/secrets", "list - v1 kube-system secrets - -"},
    {"GET", "/api/v1/namespaces/default/configmaps/c1", "get - v1 default configmaps - c1"},
    {"GET", "/api/v1/namespaces/default/services/s1/proxy", "get - v1 default services proxy s1"},
    {"GET", "/api/v1/namespaces/default/pods/p1/log", "get - v1 default pods log p1"},
    {"GET", "/api/v1/namespaces/default/pods/p1/log?follow=true", "get - v1 default pods log p1"},
    {"PUT", "/api/v1/namespaces/default/pods/p1/status", "update - v1 default pods status p1"},
    {"POST", "/api/v1/namespaces/default/pods/p1/eviction", "create - v1 default pods eviction p1"},
    {"POST", "/api/v1/namespaces/default/pods/p1/binding", "create - v1 default pods binding p1"},
    {"POST", "/api/v1/namespaces/default/serviceaccounts/sa/token", "create - v1 default serviceaccounts token sa"},
    {"PATCH", "/api/v1/namespaces/default/pods/p1/ephemeralcontainers", "patch - v1 default pods ephemeralcontainers p1"},
    // Namespaces themselves.
    {"GET", "/api/v1/namespaces", "list - v1 - namespaces - -"},
    {"GET", "/api/v1/namespaces/prod", "get - v1 prod namespaces - prod"},
    {"DELETE", "/api/v1/namespaces/prod", "delete - v1 prod namespaces - prod"},
    {"POST", "/api/v1/namespaces", "create - v1 - namespaces - -"},
    {"PUT", "/api/v1/namespaces/prod/status", "update - v1 prod namespaces status prod"},
    {"PUT", "/api/v1/namespaces/prod/finalize", "update - v1 prod namespaces finalize prod"},
    {"GET", "/api/v1/namespaces/prod/status", "get - v1 prod namespaces status prod"},
    {"GET", "/apis/example.com/v1/namespaces/prod/status", "get example.com v1 prod namespaces status prod"},
    {"PUT", "/apis/example.com/v1/namespaces/prod/finalize", "update example.com v1 prod namespaces finalize prod"},
    {"GET", "/api/v1/namespaces/prod/pods", "list - v1 prod pods - -"},
    {"GET", "/api/v1/namespaces/status/pods", "list - v1 status pods - -"},
    {"GET", "/api/v1/namespaces/finalize", "get - v1 finalize namespaces - finalize"},
    // Named groups.
    {"GET", "/apis/apps/v1/namespaces/default/deployments", "list apps v1 default deployments - -"},
    {"GET", "/apis/apps/v1/namespaces/default/deployments/d1", "get apps v1 default deployments - d1"},
    {"PATCH", "/apis/apps/v1/namespaces/default/deployments/d1/scale", "patch apps v1 default deployments scale d1"},
    {"PUT", "/apis/apps/v1/namespaces/default/deployments/d1/scale", "update apps v1 default deployments scale d1"},
    {"GET", "/apis/apps/v1/deployments", "list apps v1 - deployments - -"},
    {"DELETE", "/apis/apps/v1/namespaces/default/deployments", "deletecollection apps v1 default deployments - -"},
    {"DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/foos.example.com",
     "delete apiextensions.k8s.io v1 - customresourcedefinitions - foos.example.com"},
    {"GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", "get rbac.authorization.k8s.io v1 - clusterroles - admin"},
    {"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "create authorization.k8s.io v1 - selfsubjectaccessreviews - -"},
    {"POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "create authorization.k8s.io v1 - selfsubjectrulesreviews - -"},
    {"GET", "/apis/batch/v1/namespaces/ns/jobs/j/status", "get batch v1 ns jobs status j"},
    {"GET", "/apis/example.com/v1alpha1/namespaces/ns/widgets/w1", "get example.com v1alpha1 ns widgets - w1"},
    {"GET", "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods", "list metrics.k8s.io v1beta1 ns pods - -"},
    {"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l", "get coordination.k8s.io v1 kube-system leases - l"},
    // Watch via query and via the legacy /watch/ prefix.
    {"GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=100", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=1", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=0", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=false", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=FALSE", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=False", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=no", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=false&watch=true", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=true&watch=false", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?w%61tch=1", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=1;x=2", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?x=1;&watch=1", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?watch=%zz", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods/p1?watch=true", "get - v1 default pods - p1"},
    {"GET", "/api/v1/watch/namespaces/default/pods", "watch - v1 default pods - -"},
    {"GET", "/api/v1/watch/namespaces/default/pods/p1", "watch - v1 default pods - p1"},
    {"GET", "/api/v1/watch/pods", "watch - v1 - pods - -"},
    {"POST", "/api/v1/watch/pods", "watch - v1 - pods - -"},
    {"DELETE", "/api/v1/watch/namespaces/default/pods/p1", "watch - v1 default pods - p1"},
    {"GET", "/apis/apps/v1/watch/namespaces/ns/deployments", "watch apps v1 ns deployments - -"},
    {"GET", "/api/v1/watch", "ERR"},
    {"GET", "/api/v1/proxy", "ERR"},
    {"GET", "/api/v1/namespaces/default/pods/watch", "get - v1 default pods - watch"},
    {"GET", "/api/v1/namespaces/watch/pods", "list - v1 watch pods - -"},
    // proxy verb: no subresource.
    {"GET", "/api/v1/proxy/namespaces/ns/pods/p1/some/path", "proxy - v1 ns pods - p1"},
    {"POST", "/api/v1/proxy/nodes/n1/stats", "proxy - v1 - nodes - n1"},
    // fieldSelector=metadata.name.
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1", "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D%3Dp1", "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name!%3Dp1", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1,status.phase%3DRunning",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning,metadata.name%3Dp1",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&watch=true", "watch - v1 default pods - p1"},
    {"GET",
     "/api/v1/namespaces/ns/pods?allowWatchBookmarks=true&fieldSelector=metadata.name%3Dx&resourceVersion=103&timeoutSeconds=370&watch=true",
     "watch - v1 ns pods - x"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&limit=abc", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&limit=", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&limit=10", "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&limit=abc&watch=1", "watch - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&timeoutSeconds=1x", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D..", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Da%25b", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Da/b", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Da%5C%3Db", "list - v1 default pods - a=b"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Da%3Db", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1,bogus", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1%5C", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&fieldSelector=metadata.name%3Dp2",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&labelSelector=app%3Dweb",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&labelSelector=app+in+(a,b)",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&labelSelector=!app",
     "list - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&labelSelector=%24%24%24", "ERR"},
    {"GET", "/api/v1/namespaces/default/pods?labelSelector=%24%24%24", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D", "list - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/pods/p1?fieldSelector=metadata.name%3Dp2", "get - v1 default pods - p1"},
    {"DELETE", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dp1", "deletecollection - v1 default pods - -"},
    {"GET", "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Ds1", "list - v1 default secrets - s1"},
    // Percent-decoding happens once, before splitting.
    {"GET", "/api%2Fv1%2Fpods", "list - v1 - pods - -"},
    {"GET", "/api/v1/namespaces/default/%70ods", "list - v1 default pods - -"},
    {"POST", "/api/v1/namespaces/default/pods/p1%2Fexec?command=ls", "create - v1 default pods exec p1"},
    {"GET", "/api/v1/namespaces/default/pods/a%252Fb", "get - v1 default pods - a%2Fb"},
    {"GET", "/api/v1/namespaces/default/pods/%zz", "ERR"},
    {"GET", "/api/v1/namespaces/default/pods/%2", "ERR"},
    {"GET", "/api/v1/namespaces/default/pods/a+b", "get - v1 default pods - a+b"},
    // No normalisation.
    {"GET", "/api/v1/namespaces/default/pods/../secrets", "get - v1 default pods secrets .."},
    {"GET", "/api/v1/namespaces/default/pods/./p1", "get - v1 default pods p1 ."},
    {"GET", "/api/v1/namespaces/default/../kube-system/secrets", "get - v1 default .. secrets kube-system"},
    {"GET", "/API/v1/pods", "NR get /API/v1/pods"},
    {"GET", "/api/V1/pods", "list - V1 - pods - -"},
    {"GET", "/api/v1/Pods", "list - v1 - Pods - -"},
    // Empty segments.
    {"GET", "/api/v1/namespaces//pods", "list - v1 - pods - -"},
    {"GET", "/api/v1/namespaces/default/pods//p1", "list - v1 default pods p1 -"},
    {"GET", "//api/v1/pods", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods/", "list - v1 - pods - -"},
    {"GET", "/api/v1/namespaces/default/pods/p1/", "get - v1 default pods - p1"},
    {"GET", "/api/v1/namespaces/default/pods/p1//", "get - v1 default pods - p1"},
    {"DELETE", "/api/v1/namespaces//pods", "deletecollection - v1 - pods - -"},
    {"GET", "/api//v1/pods", "get - - - v1 - pods"},
    // '#' and ';' are ordinary in paths.
    {"GET", "/api/v1/namespaces/default/pods#x", "list - v1 default pods#x - -"},
    {"GET", "/api/v1/namespaces/default/pods;x", "list - v1 default pods;x - -"},
    {"GET", "/api/v1/namespaces/default/pods/p1#frag", "get - v1 default pods - p1#frag"},
    // Verbs are case-sensitive on resource paths.
    {"get", "/api/v1/pods", "- - v1 - pods - -"},
    {"OPTIONS", "/api/v1/pods", "- - v1 - pods - -"},
    {"CONNECT", "/api/v1/namespaces/default/pods/p1/exec", "- - v1 default pods exec p1"},
    {"TRACE", "/api/v1/pods", "- - v1 - pods - -"},
    {"Delete", "/api/v1/namespaces/default/pods/p1", "- - v1 default pods - p1"},
    // Groups need four segments.
    {"GET", "/apis/v1/pods", "NR get /apis/v1/pods"},
    {"GET", "/api/apps/v1/deployments", "get - apps - v1 - deployments"},
    {"GET", "/apis/apps/v1", "NR get /apis/apps/v1"},
    {"GET", "/apis/apps", "NR get /apis/apps"},
    // Non-resource requests.
    {"GET", "/api", "NR get /api"},
    {"GET", "/api?timeout=32s", "NR get /api"},
    {"GET", "/apis", "NR get /apis"},
    {"GET", "/api/v1", "NR get /api/v1"},
    {"GET", "/version", "NR get /version"},
    {"GET", "/version?timeout=5s", "NR get /version"},
    {"GET", "/openapi/v2", "NR get /openapi/v2"},
    {"GET", "/openapi/v3", "NR get /openapi/v3"},
    {"GET", "/openapi/v3/apis/apps/v1", "NR get /openapi/v3/apis/apps/v1"},
    {"GET", "/healthz", "NR get /healthz"},
    {"POST", "/healthz", "NR post /healthz"},
    {"DELETE", "/metrics", "NR delete /metrics"},
    {"GET", "/", "NR get /"},
    {"GET", "/logs/kube-apiserver.log", "NR get /logs/kube-apiserver.log"},
    // Absolute-form targets are served as their path.
    {"GET", "http://any.host/api/v1/pods", "list - v1 - pods - -"},
    {"GET", "https://h:6443/api/v1/namespaces/ns/secrets/s", "get - v1 ns secrets - s"},
    {"GET", "x:/api/v1/pods", "list - v1 - pods - -"},
    {"GET", "x:api/v1/pods", "ERR"},
    {"GET", "api/v1/pods", "ERR"},
    {"GET", ":/api/v1/pods", "ERR"},
    {"GET", "*", "ERR"},
    {"GET", "", "ERR"},
    {"GET", "/api/v1/pods\x01", "ERR"},
    {"GET", "/api/v1/po ds", "ERR"},
    {"GET", "/api/v1/pods\x7f", "ERR"},
    // Exec, attach, port-forward by path, whatever the method.
    {"GET", "/api/v1/namespaces/default/pods/mypod/exec?command=sh&container=c1&stdin=true&stdout=true&tty=true",
     "get - v1 default pods exec mypod"},
    {"POST", "/api/v1/namespaces/default/pods/mypod/exec?command=ls&command=-l&stdout=true",
     "create - v1 default pods exec mypod"},
    {"GET", "/api/v1/namespaces/default/pods/mypod/attach?container=c1&stdin=true", "get - v1 default pods attach mypod"},
    {"POST", "/api/v1/namespaces/default/pods/mypod/attach", "create - v1 default pods attach mypod"},
    {"GET", "/api/v1/namespaces/default/pods/mypod/portforward", "get - v1 default pods portforward mypod"},
    {"POST", "/api/v1/namespaces/default/pods/mypod/portforward?ports=8080", "create - v1 default pods portforward mypod"},
    {"GET", "/api/v1/namespaces/default/pods/mypod/exec/extra", "get - v1 default pods exec mypod"},
    {"GET", "/api/v1/namespaces/default/services/svc/portforward", "get - v1 default services portforward svc"},
    // Query oddities.
    {"GET", "/api/v1/pods?", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods?&&", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods?watch=1?x", "watch - v1 - pods - -"},
    {"GET", "/api/v1/pods?limit=5&limit=x&fieldSelector=metadata.name%3Dq", "list - v1 - pods - q"},
    {"GET", "/api/v1/pods?limit=x&limit=5&fieldSelector=metadata.name%3Dq", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods?limit=%2B5&fieldSelector=metadata.name%3Dq", "list - v1 - pods - q"},
    {"GET", "/api/v1/pods?limit=99999999999999999999&fieldSelector=metadata.name%3Dq", "list - v1 - pods - -"},
    {"GET", "/api/v1/pods?fieldSelector=metadata.name=q", "list - v1 - pods - q"},
    {"GET", "/api/v1/pods?fieldSelector=metadata.name%3Dq+r", "list - v1 - pods - q r"},
};

TEST(RequestInfoTable, MatchesApiServer) {
  EXPECT_GE(std::size(kCases), 150u);
  for (const Case& c : kCases) {
    EXPECT_EQ(Describe(ClassifyRequest(c.method, c.target)), c.want) << c.method << " " << c.target;
  }
}

TEST(RequestInfo, ExecArgvContainerAndFlags) {
  auto r = ClassifyRequest("GET",
                           "/api/v1/namespaces/prod/pods/web-0/exec?command=sh&command=-c&command=echo%20hi&container=app"
                           "&stdin=true&stdout=true&stderr=false&tty=1");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->exec);
  EXPECT_EQ(r->stream, StreamKind::kExec);
  EXPECT_EQ(r->exec->container, "app");
  EXPECT_EQ(r->exec->command, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_TRUE(r->exec->stdin_);
  EXPECT_TRUE(r->exec->stdout_);
  EXPECT_FALSE(r->exec->stderr_);
  EXPECT_TRUE(r->exec->tty);
}

TEST(RequestInfo, PortForwardAndAttachKinds) {
  auto pf = ClassifyRequest("GET", "/api/v1/namespaces/ns/pods/p/portforward?ports=80&ports=443");
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->stream, StreamKind::kPortForward);
  EXPECT_EQ(pf->ports, (std::vector<std::string>{"80", "443"}));
  auto at = ClassifyRequest("POST", "/api/v1/namespaces/ns/pods/p/attach?container=c");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->stream, StreamKind::kAttach);
  auto svc = ClassifyRequest("GET", "/api/v1/namespaces/ns/services/p/exec");
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->stream, StreamKind::kNone);
}

TEST(RequestInfo, DryRunFromQuery) {
  EXPECT_TRUE(ClassifyRequest("POST", "/api/v1/namespaces/ns/configmaps?dryRun=All")->dry_run);
  EXPECT_TRUE(ClassifyRequest("PATCH", "/api/v1/namespaces/ns/configmaps/c?dryRun=All&fieldManager=kubectl")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/configmaps?dryRun=all")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/configmaps?dryRun=All&dryRun=x")->dry_run);
  // Where the API server ignores dryRun, a dryRun=All must not read as harmless.
  EXPECT_FALSE(ClassifyRequest("GET", "/api/v1/namespaces/ns/secrets/s?dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("GET", "/api/v1/namespaces/ns/secrets?dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/pods/p/exec?command=sh&dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("GET", "/api/v1/namespaces/ns/pods/p/attach?stdin=true&dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/pods/p/portforward?ports=80&dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/services/s/proxy/x?dryRun=All")->dry_run);
  EXPECT_TRUE(ClassifyRequest("POST", "/api/v1/namespaces/ns/pods/p/eviction?dryRun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/configmaps?dryrun=All")->dry_run);
  EXPECT_FALSE(ClassifyRequest("POST", "/api/v1/namespaces/ns/configmaps")->dry_run);
}

TEST(RequestInfo, DryRunFromDeleteBody) {
  auto r = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p");
  ASSERT_TRUE(r);
  EXPECT_TRUE(NeedsBodyToClassify(*r));
  ApplyDeleteBody(*r, "application/json", R"({"propagationPolicy":"Background","dryRun":["All"]})");
  EXPECT_TRUE(r->dry_run);
}

TEST(RequestInfo, DeleteBodyReplacesQueryOptions) {
  auto r = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p?dryRun=All");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->dry_run);
  ApplyDeleteBody(*r, "application/json", R"({"propagationPolicy":"Background"})");
  EXPECT_FALSE(r->dry_run);
  auto q = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p?dryRun=All");
  ApplyDeleteBody(*q, "application/json", "");
  EXPECT_TRUE(q->dry_run);
}

TEST(RequestInfo, DeleteBodyReadConservatively) {
  for (const char* body : {R"({"DryRun":["All"]})", R"({"dryRun":"All"})", R"({"dryRun":["All","x"]})",
                           R"({"dryRun":[]})", "not json", R"({"dryRun":[1]})"}) {
    auto r = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p");
    ApplyDeleteBody(*r, "application/json", body);
    EXPECT_FALSE(r->dry_run) << body;
  }
  auto pb = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p");
  ApplyDeleteBody(*pb, "application/vnd.kubernetes.protobuf", R"({"dryRun":["All"]})");
  EXPECT_FALSE(pb->dry_run);
  auto nocontent = ClassifyRequest("DELETE", "/api/v1/namespaces/ns/pods/p");
  ApplyDeleteBody(*nocontent, "", R"({"dryRun":["All"]})");
  EXPECT_TRUE(nocontent->dry_run);
}

TEST(RequestInfo, JsonHasTheFields) {
  auto r = ClassifyRequest("POST", "/api/v1/namespaces/ns/pods/p/exec?command=ls&container=c");
  std::string j = ToJson(*r);
  EXPECT_NE(j.find(R"("verb":"create")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("stream":"exec")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("command":["ls"])"), std::string::npos) << j;
}

}  // namespace
}  // namespace kubegate

namespace kubegate {
namespace {

// Found by the request_info fuzzer: JSON output of a path with invalid
// UTF-8 threw instead of replacing the bytes.
TEST(RequestInfo, JsonOfInvalidUtf8DoesNotThrow) {
  auto r = ClassifyRequest("GET", "/api/v1/namespaces/def\x9d" "ult/pods");
  ASSERT_TRUE(r);
  std::string j = ToJson(*r);
  EXPECT_NE(j.find("def\xEF\xBF\xBD" "ult"), std::string::npos) << j;
}

}  // namespace
}  // namespace kubegate

namespace kubegate {
namespace {

TEST(GoDuration, FollowsTimeParseDuration) {
  for (const char* ok : {"0", "5s", "1m30s", "1.5h", ".5s", "5.s", "-5s", "+3ms", "10us", "10\xC2\xB5s", "10\xCE\xBCs",
                         "1h2m3s4ms5us6ns", "2562047h"}) {
    EXPECT_TRUE(IsGoDuration(ok)) << ok;
  }
  for (const char* bad : {"", "5", "1x", "s", ".s", "-", "1.5", "1h 2m", "1S", "2562048h", "9223372036854775808ns"}) {
    EXPECT_FALSE(IsGoDuration(bad)) << bad;
  }
}

// Issue 11: the API server answers 400 to a request that is not long-running
// with a timeout it cannot parse; kubegate once forwarded and allowed it.
TEST(RequestInfo, UnparsableTimeoutIsRefusedUnlessLongRunning) {
  for (const char* bad : {"/api/v1/namespaces/x/pods?timeout=5", "/api/v1/namespaces/x/pods/p?timeout=1x",
                          "/api?timeout=abc"}) {
    EXPECT_FALSE(ClassifyRequest("GET", bad)) << bad;
  }
  EXPECT_TRUE(ClassifyRequest("GET", "/api/v1/namespaces/x/pods?timeout=32s"));
  EXPECT_TRUE(ClassifyRequest("GET", "/api/v1/namespaces/x/pods?timeout="));
  // Long-running requests never read it.
  EXPECT_TRUE(ClassifyRequest("GET", "/api/v1/namespaces/x/pods?watch=true&timeout=5"));
  EXPECT_TRUE(ClassifyRequest("GET", "/api/v1/namespaces/x/pods/p/log?timeout=5"));
  EXPECT_TRUE(ClassifyRequest("POST", "/api/v1/namespaces/x/pods/p/exec?command=sh&timeout=5"));
  // Methods that are not HTTP tokens, as the gateway's parser refuses them.
  for (const char* m : {"G@T", "GET,POST", "", "GE T"}) EXPECT_FALSE(ClassifyRequest(m, "/api/v1/pods")) << m;
  EXPECT_TRUE(ClassifyRequest("get", "/api/v1/pods"));
}

}  // namespace
}  // namespace kubegate
