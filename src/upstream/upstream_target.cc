#include "upstream/upstream_target.h"

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "common/text.h"
#include "tls/pki.h"

namespace kubegate {
namespace {

// Reads `key`-data (base64) or `key` (a file, relative to the kubeconfig).
Result<std::string> DataOrFile(const YAML::Node& n, const std::string& key, const std::filesystem::path& base) {
  if (YAML::Node d = n[key + "-data"]) return Base64Decode(d.as<std::string>());
  if (YAML::Node f = n[key]) {
    std::filesystem::path p = f.as<std::string>();
    if (p.is_relative()) p = base / p;
    return ReadFile(p.string());
  }
  return std::string();
}

YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* inner) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[inner];
  }
  return YAML::Node();
}

}  // namespace

std::string UpstreamTarget::HostHeader() const {
  bool default_port = (tls && port == "443") || (!tls && port == "80");
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port ? h : h + ":" + port;
}

Result<bool> ParseServerUrl(const std::string& url, UpstreamTarget& out) {
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    out.tls = false;
    rest = url.substr(7);
  } else {
    return Error::BadRequest("upstream server URL must start with https:// or http://: " + url);
  }
  std::size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  if (!hostport.empty() && hostport.front() == '[') {
    std::size_t close = hostport.find(']');
    if (close == std::string::npos) return Error::BadRequest("bad IPv6 address in " + url);
    out.host = hostport.substr(1, close - 1);
    out.port = close + 1 < hostport.size() && hostport[close + 1] == ':' ? hostport.substr(close + 2) : "";
  } else {
    std::size_t colon = hostport.rfind(':');
    out.host = hostport.substr(0, colon);
    out.port = colon == std::string::npos ? "" : hostport.substr(colon + 1);
  }
  if (out.port.empty()) out.port = out.tls ? "443" : "80";
  if (out.host.empty()) return Error::BadRequest("upstream server URL has no host: " + url);
  return true;
}

Result<UpstreamTarget> LoadKubeconfig(const std::string& path, const std::string& context_name) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return Error::BadRequest(path + ": " + e.what());
  }
  try {
    std::string ctx_name = context_name;
    if (ctx_name.empty() && root["current-context"]) ctx_name = root["current-context"].as<std::string>();
    YAML::Node ctx = FindNamed(root["contexts"], ctx_name, "context");
    if (!ctx) return Error::BadRequest(path + ": no context named \"" + ctx_name + "\"");
    YAML::Node cluster = FindNamed(root["clusters"], ctx["cluster"].as<std::string>(""), "cluster");
    YAML::Node user = FindNamed(root["users"], ctx["user"].as<std::string>(""), "user");
    if (!cluster) return Error::BadRequest(path + ": context \"" + ctx_name + "\" names no known cluster");
    UpstreamTarget t;
    auto ok = ParseServerUrl(cluster["server"].as<std::string>(""), t);
    if (!ok) return ok.error();
    std::filesystem::path base = std::filesystem::path(path).parent_path();
    auto ca = DataOrFile(cluster, "certificate-authority", base);
    if (!ca) return ca.error();
    t.ca_pem = *ca;
    t.insecure_skip_verify = cluster["insecure-skip-tls-verify"].as<bool>(false);
    t.tls_server_name = cluster["tls-server-name"].as<std::string>("");
    if (user) {
      t.bearer_token = user["token"].as<std::string>("");
      if (YAML::Node tf = user["tokenFile"]) {
        std::filesystem::path p = tf.as<std::string>();
        t.token_file = (p.is_relative() ? base / p : p).string();
        auto tok = ReadFile(t.token_file);
        if (!tok) return tok.error();
        t.bearer_token = *tok;
      }
      auto cert = DataOrFile(user, "client-certificate", base);
      if (!cert) return cert.error();
      auto key = DataOrFile(user, "client-key", base);
      if (!key) return key.error();
      t.client_cert_pem = *cert;
      t.client_key_pem = *key;
    }
    t.bearer_token = TrimTrailingSpace(std::move(t.bearer_token));
    return t;
  } catch (const YAML::Exception& e) {
    return Error::BadRequest(path + ": " + e.what());
  }
}

Result<UpstreamTarget> LoadInCluster(const std::string& sa_dir,
                                     const std::function<const char*(const char*)>& getenv) {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Error::BadRequest("in-cluster upstream needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT");
  }
  UpstreamTarget t;
  t.tls = true;
  t.host = host;
  t.port = port;
  t.token_file = sa_dir + "/token";
  auto tok = ReadFile(t.token_file);
  if (!tok) return tok.error();
  t.bearer_token = TrimTrailingSpace(*tok);
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca) return ca.error();
  t.ca_pem = *ca;
  return t;
}

}  // namespace kubegate
