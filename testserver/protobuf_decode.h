// Decodes the Kubernetes protobuf envelope ("k8s\0" + runtime.Unknown) and,
// for the types kubectl 1.32's typed clients send (ConfigMap, Secret,
// Namespace, SelfSubjectAccessReview, ServiceAccount, TokenRequest), the object into the JSON the API
// server would have stored. Other kinds: nullopt (the server answers 415).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kubegate::testserver {

std::optional<nlohmann::json> DecodeKubernetesProtobuf(std::string_view body);

}  // namespace kubegate::testserver
