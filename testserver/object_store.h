// ObjectStore: the test API server's in-memory objects, with resource
// versions and a watch event log. Plain C++ (no sockets); the server in
// kube_testserver.cc drives it from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubegate::testserver {

struct ResourceType {
  std::string group;     // "" for core
  std::string version;
  std::string resource;  // plural
  std::string kind;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> subresources;  // e.g. "exec", "log", "status"
};

// The resources this test server serves.
const std::vector<ResourceType>& ServedTypes();
const ResourceType* FindType(const std::string& group, const std::string& version, const std::string& resource);

struct WatchEvent {
  std::uint64_t rv;
  std::string type;  // ADDED, MODIFIED, DELETED
  std::string resource_key;  // group/resource
  nlohmann::json object;
};

struct StoreError {
  int code;
  std::string reason;
  std::string message;
};

class ObjectStore {
 public:
  ObjectStore();

  using Result = std::variant<nlohmann::json, StoreError>;

  Result Create(const ResourceType& t, const std::string& ns, nlohmann::json obj);
  Result Get(const ResourceType& t, const std::string& ns, const std::string& name) const;
  Result Update(const ResourceType& t, const std::string& ns, const std::string& name, nlohmann::json obj);
  // Deletes one object; deleting a namespace deletes everything in it.
  Result Delete(const ResourceType& t, const std::string& ns, const std::string& name);
  // Objects of type t in ns ("" = all namespaces) passing `keep`.
  std::vector<nlohmann::json> List(const ResourceType& t, const std::string& ns,
                                   const std::function<bool(const nlohmann::json&)>& keep) const;

  std::uint64_t resource_version() const { return rv_; }
  // Events with rv > since for type t.
  std::vector<WatchEvent> EventsSince(std::uint64_t since, const ResourceType& t) const;
  // Called after every change, with the changed object's TypeKey.
  void OnChange(std::function<void(const std::string& type_key)> f) { on_change_ = std::move(f); }
  // What identifies a resource type in events and OnChange: "group/resource".
  static std::string TypeKey(const ResourceType& t) { return t.group + "/" + t.resource; }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // type key, ns, name
  void Record(const std::string& type, const ResourceType& t, const nlohmann::json& obj);
  bool NamespaceExists(const std::string& ns) const;

  std::map<Key, nlohmann::json> objects_;
  std::vector<WatchEvent> events_;
  std::uint64_t rv_ = 100;
  std::function<void(const std::string&)> on_change_;
};

// Applies a patch of the given content type to `target`.
std::optional<std::string> ApplyPatch(nlohmann::json& target, const std::string& content_type,
                                      const nlohmann::json& patch);

}  // namespace kubegate::testserver
