#include "policy/kubectl_command.h"

#include <algorithm>
#include <map>
#include <optional>

namespace kubegate {
namespace {

struct ResourceType {
  std::string group_version;  // "v1" (core) or "apps/v1"
  std::string plural;
  bool namespaced;
};

const std::map<std::string, ResourceType>& Resources() {
  static const std::map<std::string, ResourceType> m = [] {
    std::map<std::string, ResourceType> r;
    auto add = [&](std::vector<std::string> names, ResourceType t) {
      for (const auto& n : names) r[n] = t;
    };
    add({"pods", "pod", "po"}, {"v1", "pods", true});
    add({"services", "service", "svc"}, {"v1", "services", true});
    add({"secrets", "secret"}, {"v1", "secrets", true});
    add({"configmaps", "configmap", "cm"}, {"v1", "configmaps", true});
    add({"serviceaccounts", "serviceaccount", "sa"}, {"v1", "serviceaccounts", true});
    add({"persistentvolumeclaims", "persistentvolumeclaim", "pvc"}, {"v1", "persistentvolumeclaims", true});
    add({"events", "event", "ev"}, {"v1", "events", true});
    add({"namespaces", "namespace", "ns"}, {"v1", "namespaces", false});
    add({"nodes", "node", "no"}, {"v1", "nodes", false});
    add({"persistentvolumes", "persistentvolume", "pv"}, {"v1", "persistentvolumes", false});
    add({"deployments", "deployment", "deploy"}, {"apps/v1", "deployments", true});
    add({"statefulsets", "statefulset", "sts"}, {"apps/v1", "statefulsets", true});
    add({"daemonsets", "daemonset", "ds"}, {"apps/v1", "daemonsets", true});
    add({"replicasets", "replicaset", "rs"}, {"apps/v1", "replicasets", true});
    add({"jobs", "job"}, {"batch/v1", "jobs", true});
    add({"cronjobs", "cronjob", "cj"}, {"batch/v1", "cronjobs", true});
    add({"customresourcedefinitions", "customresourcedefinition", "crd", "crds"},
        {"apiextensions.k8s.io/v1", "customresourcedefinitions", false});
    add({"roles", "role"}, {"rbac.authorization.k8s.io/v1", "roles", true});
    add({"rolebindings", "rolebinding"}, {"rbac.authorization.k8s.io/v1", "rolebindings", true});
    add({"clusterroles", "clusterrole"}, {"rbac.authorization.k8s.io/v1", "clusterroles", false});
    add({"clusterrolebindings", "clusterrolebinding"}, {"rbac.authorization.k8s.io/v1", "clusterrolebindings", false});
    add({"ingresses", "ingress", "ing"}, {"networking.k8s.io/v1", "ingresses", true});
    return r;
  }();
  return m;
}

std::string Escape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Collection(const ResourceType& t, const std::string& ns) {
  std::string base = t.group_version == "v1" ? "/api/v1" : "/apis/" + t.group_version;
  if (t.namespaced && !ns.empty()) base += "/namespaces/" + ns;
  return base + "/" + t.plural;
}

}  // namespace

Result<KubectlRequest> KubectlToRequest(const std::vector<std::string>& argv, const std::string& default_namespace) {
  std::vector<std::string> args;
  std::vector<std::string> after_dashes;
  std::string ns = default_namespace, container, dry_run;
  bool all_namespaces = false, dashes = false, tty = false, stdin_ = false;
  KubectlRequest out;
  std::size_t start = (!argv.empty() && argv[0].find("kubectl") != std::string::npos) ? 1 : 0;
  for (std::size_t i = start; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (dashes) {
      after_dashes.push_back(a);
      continue;
    }
    auto value = [&](const std::string& flag) -> std::optional<std::string> {
      if (a == flag && i + 1 < argv.size()) return argv[++i];
      if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
      return std::nullopt;
    };
    if (a == "--") {
      dashes = true;
    } else if (auto v = value("-n"); v) {
      ns = *v;
    } else if (auto v2 = value("--namespace"); v2) {
      ns = *v2;
    } else if (auto v3 = value("-c"); v3) {
      container = *v3;
    } else if (auto v4 = value("--container"); v4) {
      container = *v4;
    } else if (a.rfind("--dry-run", 0) == 0) {
      dry_run = a.find('=') == std::string::npos ? "client" : a.substr(a.find('=') + 1);
    } else if (a == "-A" || a == "--all-namespaces") {
      all_namespaces = true;
    } else if (a == "-it" || a == "-ti") {
      tty = stdin_ = true;
    } else if (a == "-i" || a == "--stdin") {
      stdin_ = true;
    } else if (a == "-t" || a == "--tty") {
      tty = true;
    } else if (a.rfind("--as", 0) == 0) {
      out.impersonation = true;
      if (a == "--as" || a == "--as-group" || a == "--as-uid") ++i;
    } else if (a.rfind("-", 0) == 0) {
      // Other flags (-o wide, --wait=false, --force ...) do not change the request's target.
      if ((a == "-o" || a == "-l" || a == "--selector" || a == "--output") && i + 1 < argv.size()) ++i;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return Error::BadRequest("no kubectl verb given");
  std::string verb = args[0];
  auto type_of = [&](std::string r, std::string& name) -> Result<ResourceType> {
    if (auto slash = r.find('/'); slash != std::string::npos) {
      name = r.substr(slash + 1);
      r = r.substr(0, slash);
    }
    auto it = Resources().find(r);
    if (it == Resources().end()) {
      return Error::BadRequest("kubegate does not know resource \"" + r + "\" by name; use --method and --url");
    }
    return it->second;
  };
  std::string name;
  if (verb == "exec" || verb == "attach" || verb == "port-forward" || verb == "logs") {
    if (args.size() < 2) return Error::BadRequest(verb + " needs a pod");
    std::string pod = args[1];
    if (pod.rfind("pod/", 0) == 0) pod = pod.substr(4);
    std::string base = "/api/v1/namespaces/" + ns + "/pods/" + pod;
    if (verb == "logs") {
      out.method = "GET";
      out.target = base + "/log" + (container.empty() ? "" : "?container=" + Escape(container));
      return out;
    }
    std::string q;
    auto add = [&](const std::string& k, const std::string& v) { q += (q.empty() ? "?" : "&") + k + "=" + Escape(v); };
    if (verb == "port-forward") {
      for (std::size_t i = 2; i < args.size(); ++i) add("ports", args[i].substr(args[i].rfind(':') + 1));
      out.method = "POST";
      out.target = base + "/portforward" + q;
      return out;
    }
    if (!container.empty()) add("container", container);
    if (verb == "exec") {
      for (const auto& c : after_dashes) add("command", c);
      if (after_dashes.empty()) return Error::BadRequest("exec needs a command after --");
    }
    if (stdin_) add("stdin", "true");
    add("stdout", "true");
    if (!tty) add("stderr", "true");
    if (tty) add("tty", "true");
    out.method = "POST";
    out.target = base + "/" + verb + q;
    return out;
  }
  if (args.size() < 2) return Error::BadRequest(verb + " needs a resource");
  auto type = type_of(args[1], name);
  if (!type) return type.error();
  if (name.empty() && args.size() >= 3) name = args[2];
  std::string coll = Collection(*type, all_namespaces ? "" : ns);
  std::string dr = dry_run == "server" ? "?dryRun=All" : "";
  if (verb == "get" || verb == "describe") {
    out.method = "GET";
    out.target = name.empty() ? coll : coll + "/" + name;
  } else if (verb == "delete") {
    out.method = "DELETE";
    out.target = (name.empty() ? coll : coll + "/" + name) + dr;
  } else if (verb == "scale") {
    if (name.empty()) return Error::BadRequest("scale needs a name");
    out.method = "PATCH";
    out.target = coll + "/" + name + "/scale" + dr;
  } else if (verb == "edit" || verb == "patch" || verb == "label" || verb == "annotate") {
    if (name.empty()) return Error::BadRequest(verb + " needs a name");
    out.method = "PATCH";
    out.target = coll + "/" + name + dr;
  } else if (verb == "create") {
    out.method = "POST";
    out.target = coll + dr;
  } else {
    return Error::BadRequest("kubegate does not read \"kubectl " + verb + "\"; use --method and --url");
  }
  if (dry_run == "client") return Error::BadRequest("--dry-run=client never reaches the gateway");
  return out;
}

}  // namespace kubegate
