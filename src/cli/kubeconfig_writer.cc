#include "cli/kubeconfig_writer.h"

#include "common/text.h"

#include <yaml-cpp/yaml.h>

namespace kubegate {
std::string RenderKubeconfig(const CallerKubeconfig& k) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "v1";
  out << YAML::Key << "kind" << YAML::Value << "Config";
  out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << "kubegate";
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "server" << YAML::Value << k.server;
  out << YAML::Key << "certificate-authority-data" << YAML::Value << Base64Encode(k.ca_pem);
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << k.user;
  out << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  if (!k.token.empty()) out << YAML::Key << "token" << YAML::Value << k.token;
  if (!k.exec.empty()) {
    out << YAML::Key << "exec" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "apiVersion" << YAML::Value << "client.authentication.k8s.io/v1";
    out << YAML::Key << "command" << YAML::Value << k.exec[0];
    out << YAML::Key << "args" << YAML::Value << YAML::BeginSeq;
    for (std::size_t i = 1; i < k.exec.size(); ++i) out << k.exec[i];
    out << YAML::EndSeq;
    // The plugin may print a sign-in URL and code: kubectl shows its stderr.
    out << YAML::Key << "interactiveMode" << YAML::Value << "IfAvailable";
    out << YAML::Key << "provideClusterInfo" << YAML::Value << false;
    out << YAML::EndMap;
  }
  if (!k.client_cert_pem.empty()) {
    out << YAML::Key << "client-certificate-data" << YAML::Value << Base64Encode(k.client_cert_pem);
    out << YAML::Key << "client-key-data" << YAML::Value << Base64Encode(k.client_key_pem);
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << k.user + "@kubegate";
  out << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "cluster" << YAML::Value << "kubegate";
  out << YAML::Key << "user" << YAML::Value << k.user;
  if (!k.namespace_.empty()) out << YAML::Key << "namespace" << YAML::Value << k.namespace_;
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;
  out << YAML::Key << "current-context" << YAML::Value << k.user + "@kubegate";
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace kubegate
