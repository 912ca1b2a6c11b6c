#include "upstream/upstream_target.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace kubegate {
namespace {

std::filesystem::path TempDir(const char* name) {
  auto d = std::filesystem::temp_directory_path() / (std::string(name) + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

TEST(UpstreamTarget, ServerUrls) {
  UpstreamTarget t;
  ASSERT_TRUE(ParseServerUrl("https://10.0.0.1:6443", t));
  EXPECT_EQ(t.host, "10.0.0.1");
  EXPECT_EQ(t.port, "6443");
  EXPECT_EQ(t.HostHeader(), "10.0.0.1:6443");
  ASSERT_TRUE(ParseServerUrl("https://k8s.example/prefix/", t));
  EXPECT_EQ(t.port, "443");
  EXPECT_EQ(t.base_path, "/prefix");
  EXPECT_EQ(t.HostHeader(), "k8s.example");
  ASSERT_TRUE(ParseServerUrl("http://[::1]:8080", t));
  EXPECT_FALSE(t.tls);
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.HostHeader(), "[::1]:8080");
  EXPECT_FALSE(ParseServerUrl("ftp://x", t));
}

TEST(UpstreamTarget, KubeconfigContextsAndCredentials) {
  auto d = TempDir("kg-kc-");
  std::ofstream(d / "ca.pem") << "CA PEM";
  std::ofstream(d / "kc.yaml") << R"(apiVersion: v1
kind: Config
current-context: a
clusters:
- name: ca
  cluster: {server: "https://a.example:6443", certificate-authority: ca.pem}
- name: cb
  cluster: {server: "https://b.example", certificate-authority-data: Q0EgQg==, tls-server-name: api.b}
users:
- name: ua
  user: {token: tok-a}
- name: ub
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
contexts:
- name: a
  context: {cluster: ca, user: ua}
- name: b
  context: {cluster: cb, user: ub}
)";
  auto a = LoadKubeconfig((d / "kc.yaml").string(), "");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->host, "a.example");
  EXPECT_EQ(a->ca_pem, "CA PEM");
  EXPECT_EQ(a->bearer_token, "tok-a");
  auto b = LoadKubeconfig((d / "kc.yaml").string(), "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->ca_pem, "CA B");
  EXPECT_EQ(b->tls_server_name, "api.b");
  EXPECT_EQ(b->client_cert_pem, "CERT");
  EXPECT_EQ(b->client_key_pem, "KEY");
  EXPECT_FALSE(LoadKubeconfig((d / "kc.yaml").string(), "nope"));
  std::filesystem::remove_all(d);
}

TEST(UpstreamTarget, InCluster) {
  auto d = TempDir("kg-sa-");
  std::ofstream(d / "token") << "sa-token\n";
  std::ofstream(d / "ca.crt") << "SA CA";
  auto env = [](const char* k) -> const char* {
    std::string s = k;
    if (s == "KUBERNETES_SERVICE_HOST") return "10.96.0.1";
    if (s == "KUBERNETES_SERVICE_PORT") return "443";
    return nullptr;
  };
  auto t = LoadInCluster(d.string(), env);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->bearer_token, "sa-token");
  EXPECT_EQ(t->ca_pem, "SA CA");
  EXPECT_EQ(t->host, "10.96.0.1");
  EXPECT_FALSE(LoadInCluster(d.string(), [](const char*) -> const char* { return nullptr; }));
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace kubegate
