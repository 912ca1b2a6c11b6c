#include "object_store.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>
#include <variant>

namespace kubegate::testserver {
namespace {

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string NewUid() {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s.push_back('-');
    s.push_back(kHex[rng() & 15]);
  }
  return s;
}

StoreError NotFound(const ResourceType& t, const std::string& name) {
  std::string what = t.group.empty() ? t.resource : t.resource + "." + t.group;
  return {404, "NotFound", what + " \"" + name + "\" not found"};
}

}  // namespace

const std::vector<ResourceType>& ServedTypes() {
  static const std::vector<ResourceType> kTypes = {
      {"", "v1", "namespaces", "Namespace", "namespace", false, {"ns"}, {"status", "finalize"}},
      {"", "v1", "pods", "Pod", "pod", true, {"po"}, {"status", "log", "exec", "attach", "portforward"}},
      {"", "v1", "configmaps", "ConfigMap", "configmap", true, {"cm"}, {}},
      {"", "v1", "secrets", "Secret", "secret", true, {}, {}},
      {"", "v1", "services", "Service", "service", true, {"svc"}, {"status"}},
      {"", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", true, {"sa"}, {"token"}},
      {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "persistentvolumeclaim", true, {"pvc"}, {"status"}},
      {"apps", "v1", "deployments", "Deployment", "deployment", true, {"deploy"}, {"status", "scale"}},
      {"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", "poddisruptionbudget", true, {"pdb"}, {"status"}},
      {"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", "networkpolicy", true, {"netpol"}, {}},
      {"rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", "clusterrole", false, {}, {}},
      {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", "clusterrolebinding", false, {},
       {}},
      {"authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", "selfsubjectaccessreview",
       false, {}, {}},
      {"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", "tokenreview", false, {}, {}},
  };
  return kTypes;
}

const ResourceType* FindType(const std::string& group, const std::string& version, const std::string& resource) {
  for (const auto& t : ServedTypes()) {
    if (t.group == group && t.version == version && t.resource == resource) return &t;
  }
  return nullptr;
}

ObjectStore::ObjectStore() {
  const ResourceType* ns = FindType("", "v1", "namespaces");
  for (const char* n : {"default", "kube-system"}) {
    Create(*ns, "", nlohmann::json{{"metadata", {{"name", n}}}});
  }
}

bool ObjectStore::NamespaceExists(const std::string& ns) const {
  return objects_.count(Key{"/namespaces", "", ns}) > 0;
}

void ObjectStore::Record(const std::string& type, const ResourceType& t, const nlohmann::json& obj) {
  events_.push_back(WatchEvent{rv_, type, TypeKey(t), obj});
  if (on_change_) on_change_(events_.back().resource_key);
}

ObjectStore::Result ObjectStore::Create(const ResourceType& t, const std::string& ns, nlohmann::json obj) {
  if (!obj.is_object()) return StoreError{400, "BadRequest", "the body is not an object"};
  std::string name = obj["metadata"].value("name", "");
  if (name.empty() && obj["metadata"].contains("generateName")) {
    name = obj["metadata"]["generateName"].get<std::string>() + NewUid().substr(0, 5);
  }
  if (name.empty()) return StoreError{422, "Invalid", t.kind + " is invalid: metadata.name: Required value: name is required"};
  if (t.namespaced && !NamespaceExists(ns)) return StoreError{404, "NotFound", "namespaces \"" + ns + "\" not found"};
  Key key{TypeKey(t), t.namespaced ? ns : "", name};
  if (objects_.count(key)) {
    return StoreError{409, "AlreadyExists", t.resource + " \"" + name + "\" already exists"};
  }
  obj["apiVersion"] = t.group.empty() ? t.version : t.group + "/" + t.version;
  obj["kind"] = t.kind;
  auto& md = obj["metadata"];
  md["name"] = name;
  if (t.namespaced) md["namespace"] = ns;
  md["uid"] = NewUid();
  md["creationTimestamp"] = NowRfc3339();
  md["resourceVersion"] = std::to_string(++rv_);
  if (t.resource == "pods") obj["status"] = {{"phase", "Running"}};
  if (t.resource == "namespaces") obj["status"] = {{"phase", "Active"}};
  if (t.resource == "deployments") {
    int replicas = obj["spec"].value("replicas", 1);
    obj["spec"]["replicas"] = replicas;
    obj["status"] = {{"replicas", replicas}, {"readyReplicas", replicas}, {"availableReplicas", replicas},
                     {"updatedReplicas", replicas}, {"observedGeneration", 1}};
    md["generation"] = 1;
  }
  objects_[key] = obj;
  Record("ADDED", t, obj);
  return obj;
}

ObjectStore::Result ObjectStore::Get(const ResourceType& t, const std::string& ns, const std::string& name) const {
  auto it = objects_.find(Key{TypeKey(t), t.namespaced ? ns : "", name});
  if (it == objects_.end()) return NotFound(t, name);
  return it->second;
}

ObjectStore::Result ObjectStore::Update(const ResourceType& t, const std::string& ns, const std::string& name,
                                        nlohmann::json obj) {
  Key key{TypeKey(t), t.namespaced ? ns : "", name};
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound(t, name);
  if (!obj.is_object()) return StoreError{400, "BadRequest", "the body is not an object"};
  const auto& old_md = it->second["metadata"];
  obj["apiVersion"] = it->second["apiVersion"];
  obj["kind"] = t.kind;
  auto& md = obj["metadata"];
  for (const char* k : {"name", "namespace", "uid", "creationTimestamp"}) {
    if (old_md.contains(k)) md[k] = old_md[k];
  }
  md["resourceVersion"] = std::to_string(++rv_);
  if (t.resource == "deployments") {
    md["generation"] = old_md.value("generation", 1) + 1;
    int replicas = obj["spec"].value("replicas", 1);
    obj["status"] = {{"replicas", replicas}, {"readyReplicas", replicas}, {"availableReplicas", replicas},
                     {"updatedReplicas", replicas}, {"observedGeneration", md["generation"]}};
  }
  it->second = obj;
  Record("MODIFIED", t, obj);
  return obj;
}

ObjectStore::Result ObjectStore::Delete(const ResourceType& t, const std::string& ns, const std::string& name) {
  Key key{TypeKey(t), t.namespaced ? ns : "", name};
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound(t, name);
  nlohmann::json obj = it->second;
  if (t.resource == "namespaces") {
    for (const auto& other : ServedTypes()) {
      if (!other.namespaced) continue;
      std::vector<std::string> names;
      for (const auto& [k, v] : objects_) {
        if (std::get<0>(k) == TypeKey(other) && std::get<1>(k) == name) names.push_back(std::get<2>(k));
      }
      for (const auto& n : names) Delete(other, name, n);
    }
  }
  objects_.erase(key);
  obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
  Record("DELETED", t, obj);
  return obj;
}

std::vector<nlohmann::json> ObjectStore::List(const ResourceType& t, const std::string& ns,
                                              const std::function<bool(const nlohmann::json&)>& keep) const {
  std::vector<nlohmann::json> out;
  for (const auto& [k, v] : objects_) {
    if (std::get<0>(k) != TypeKey(t)) continue;
    if (t.namespaced && !ns.empty() && std::get<1>(k) != ns) continue;
    if (keep(v)) out.push_back(v);
  }
  return out;
}

std::vector<WatchEvent> ObjectStore::EventsSince(std::uint64_t since, const ResourceType& t) const {
  std::vector<WatchEvent> out;
  const std::string key = TypeKey(t);
  // events_ is in resourceVersion order.
  auto first = std::upper_bound(events_.begin(), events_.end(), since,
                                [](std::uint64_t rv, const WatchEvent& e) { return rv < e.rv; });
  for (auto it = first; it != events_.end(); ++it) {
    if (it->resource_key == key) out.push_back(*it);
  }
  return out;
}

std::optional<std::string> ApplyPatch(nlohmann::json& target, const std::string& content_type,
                                      const nlohmann::json& patch) {
  try {
    if (content_type.rfind("application/json-patch+json", 0) == 0) {
      target = target.patch(patch);
    } else {
      // merge-patch, strategic-merge-patch and apply-patch: for the maps and
      // scalars kubectl's tests touch, a JSON merge patch gives the same result.
      target.merge_patch(patch);
    }
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace kubegate::testserver
