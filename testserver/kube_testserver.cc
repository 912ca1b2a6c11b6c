// kube-testserver: a small Kubernetes API server for kubegate's tests and
// demo. NOT a cluster: objects live in memory, pods run a tiny built-in
// shell. It follows the wire facts in shared/kubectl-wire/WIRE.md: legacy
// discovery, Table output for kubectl get, chunked JSON watches, chunked
// logs -f, exec over WebSocket v5.channel.k8s.io with Status on channel 3.
// Every request it receives is appended to --record as one JSON line
// (method, target, headers), so tests can assert what kubegate forwarded.
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <list>
#include <map>
#include <optional>
#include <sstream>
#include <variant>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/kubeconfig_writer.h"
#include "classify/go_url.h"
#include "object_store.h"
#include "protobuf_decode.h"
#include "service_account_tokens.h"
#include "spdy_pod_session.h"
#include "tiny_shell.h"
#include "tls/pki.h"

namespace kubegate::testserver {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

// How long a WebSocket exec's process takes to start (see Exec).
constexpr int kExecStartMs = 5;
using json = nlohmann::json;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;

auto Redirect(beast::error_code& ec) { return asio::redirect_error(use_awaitable, ec); }

struct Options {
  std::string token;
  std::string record_file;
  int max_watch_seconds = 1800;
  std::string server_address;
};

// go-restful's tokenizePath (github.com/emicklei/go-restful/v3, the router
// kube-apiserver uses) cuts paths as SplitPathSegments does: an inner "//"
// is an empty segment. A route's literal segments never match an empty one
// (`/api/v1//namespaces/...` and `pods/b//exec` are 404); a variable may
// (`namespaces//pods` lists every namespace).
std::vector<std::string> Split(const std::string& path) { return SplitPathSegments(path); }

json StatusBody(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
          {"message", message}, {"reason", reason}, {"code", code}};
}

json StatusBody(int code, const std::string& reason, const std::string& message);

// An OpenAPI v3 document for one group/version: for every resource, its
// operations with the x-kubernetes-group-version-kind extension and the
// fieldValidation parameter, which is what kubectl checks before it asks
// the server to validate fields (--validate=strict, the default).
json OpenApiV3(const std::string& group, const std::string& version) {
  json paths = json::object();
  json schemas = json::object();
  std::string prefix = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  for (const auto& t : ServedTypes()) {
    if (t.group != group || t.version != version) continue;
    json gvk = {{"group", group}, {"version", version}, {"kind", t.kind}};
    json params = json::array({{{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
                               {{"name", "fieldManager"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
                               {{"name", "dryRun"}, {"in", "query"}, {"schema", {{"type", "string"}}}}});
    json op = {{"parameters", params}, {"x-kubernetes-group-version-kind", gvk}, {"responses", {{"200", {{"description", "OK"}}}}}};
    std::string base = prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.resource;
    paths[base] = {{"get", op}, {"post", op}};
    paths[base + "/{name}"] = {{"get", op}, {"put", op}, {"patch", op}, {"delete", op}};
    std::string schema_name = "io.k8s.api." + (group.empty() ? std::string("core") : group) + "." + version + "." + t.kind;
    schemas[schema_name] = {{"type", "object"}, {"x-kubernetes-group-version-kind", json::array({gvk})},
                            {"properties", {{"apiVersion", {{"type", "string"}}}, {"kind", {{"type", "string"}}},
                                            {"metadata", {{"type", "object"}}}, {"spec", {{"type", "object"}}},
                                            {"data", {{"type", "object"}}}, {"status", {{"type", "object"}}}}}};
  }
  return {{"openapi", "3.0.0"}, {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}}, {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

// /version, /api, /apis and /api(s)/GROUP/VERSION documents (legacy
// discovery; kubectl falls back to it from the aggregated form).
std::optional<std::pair<int, json>> DiscoveryDoc(const std::string& path, const std::vector<std::string>& p,
                                                 const std::string& server_address) {
  if (path == "/version") {
    return std::pair<int, json>{200, {{"major", "1"}, {"minor", "32"}, {"gitVersion", "v1.32.0-kubegate-testserver"},
                                      {"gitCommit", "0000000"}, {"gitTreeState", "clean"},
                                      {"buildDate", "2026-01-01T00:00:00Z"}, {"goVersion", "go1.23"},
                                      {"compiler", "gc"}, {"platform", "linux/amd64"}}};
  }
  if (p.size() == 1 && p[0] == "api") {
    return std::pair<int, json>{200, {{"kind", "APIVersions"}, {"versions", {"v1"}},
                                      {"serverAddressByClientCIDRs",
                                       {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}}};
  }
  if (p.size() == 1 && p[0] == "apis") {
    json groups = json::array();
    std::string last;
    for (const auto& t : ServedTypes()) {
      if (t.group.empty() || t.group == last) continue;
      last = t.group;
      json gv = {{"groupVersion", t.group + "/" + t.version}, {"version", t.version}};
      groups.push_back({{"name", t.group}, {"versions", json::array({gv})}, {"preferredVersion", gv}});
    }
    return std::pair<int, json>{200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}}};
  }
  if ((p.size() == 2 && p[0] == "api") || (p.size() == 3 && p[0] == "apis")) {
    std::string group = p[0] == "apis" ? p[1] : "";
    std::string version = p.back();
    json resources = json::array();
    json all_verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
    for (const auto& t : ServedTypes()) {
      if (t.group != group || t.version != version) continue;
      resources.push_back({{"name", t.resource}, {"singularName", t.singular}, {"namespaced", t.namespaced},
                           {"kind", t.kind}, {"verbs", all_verbs}, {"shortNames", t.short_names}});
      for (const auto& sub : t.subresources) {
        json verbs = sub == "log" ? json::array({"get"}) : json::array({"create", "get"});
        resources.push_back({{"name", t.resource + "/" + sub}, {"singularName", ""}, {"namespaced", t.namespaced},
                             {"kind", t.kind}, {"verbs", verbs}});
      }
    }
    if (resources.empty()) {
      return std::pair<int, json>{404, StatusBody(404, "NotFound", "the server could not find the requested resource")};
    }
    return std::pair<int, json>{200, {{"kind", "APIResourceList"}, {"apiVersion", "v1"},
                                      {"groupVersion", group.empty() ? version : group + "/" + version},
                                      {"resources", resources}}};
  }
  if (path == "/openapi/v3") {
    json paths = json::object();
    for (const auto& t : ServedTypes()) {
      const std::string gv = t.group.empty() ? "api/" + t.version : "apis/" + t.group + "/" + t.version;
      paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=kubegate-testserver-1"}};
    }
    return std::pair<int, json>{200, {{"paths", paths}}};
  }
  if (p.size() == 4 && p[0] == "openapi" && p[1] == "v3" && p[2] == "api") {
    return std::pair<int, json>{200, OpenApiV3("", p[3])};
  }
  if (p.size() == 5 && p[0] == "openapi" && p[1] == "v3" && p[2] == "apis") {
    return std::pair<int, json>{200, OpenApiV3(p[3], p[4])};
  }
  return std::nullopt;
}

std::string AgeOf(const json& obj) {
  std::tm tm{};
  std::string ts = obj["metadata"].value("creationTimestamp", "");
  if (!strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return "<unknown>";
  long secs = static_cast<long>(std::time(nullptr) - timegm(&tm));
  if (secs < 120) return std::to_string(std::max(0L, secs)) + "s";
  if (secs < 7200) return std::to_string(secs / 60) + "m";
  return std::to_string(secs / 3600) + "h";
}

json Table(const ResourceType& t, const std::vector<json>& objs, std::uint64_t rv) {
  json cols = json::array({{{"name", "Name"}, {"type", "string"}, {"format", "name"}, {"description", ""}, {"priority", 0}}});
  bool has_status = t.resource == "pods" || t.resource == "namespaces";
  if (has_status) cols.push_back({{"name", "Status"}, {"type", "string"}, {"format", ""}, {"description", ""}, {"priority", 0}});
  cols.push_back({{"name", "Age"}, {"type", "string"}, {"format", ""}, {"description", ""}, {"priority", 0}});
  json rows = json::array();
  for (const auto& o : objs) {
    json cells = json::array({o["metadata"]["name"]});
    if (has_status) cells.push_back(o["status"].value("phase", ""));
    cells.push_back(AgeOf(o));
    json meta = o["metadata"];
    rows.push_back({{"cells", cells},
                    {"object", {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", meta}}}});
  }
  return {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", {{"resourceVersion", std::to_string(rv)}}},
          {"columnDefinitions", cols}, {"rows", rows}};
}

bool WantsTable(const Request& req) {
  return std::string(req[http::field::accept]).find("as=Table") != std::string::npos;
}

class Server {
 public:
  Server(asio::io_context& ioc, ssl::context& ctx, Options opts) : ioc_(ioc), ctx_(ctx), opts_(std::move(opts)) {
    store_.OnChange([this](const std::string& type_key) { Notify(type_key); });
    if (!opts_.record_file.empty()) record_.open(opts_.record_file, std::ios::app);
  }

  awaitable<void> Accept(tcp::acceptor& acceptor) {
    while (true) {
      beast::error_code ec;
      tcp::socket sock = co_await acceptor.async_accept(Redirect(ec));
      if (ec) co_return;
      asio::co_spawn(ioc_, Session(Stream(std::move(sock), ctx_)), asio::detached);
    }
  }

 private:
  // Wakes the watches of one resource type (so 10,000 open watches of other
  // types cost an event nothing: bench/watch_latency.sh).
  void Notify(const std::string& type_key) {
    auto it = waiters_.find(type_key);
    if (it == waiters_.end()) return;
    for (auto* t : it->second) t->cancel();
  }

  void Record(const Request& req) {
    if (!record_.is_open()) return;
    json headers = json::object();
    for (const auto& f : req) headers[std::string(f.name_string())].push_back(std::string(f.value()));
    record_ << json{{"method", std::string(req.method_string())}, {"target", std::string(req.target())},
                    {"headers", headers}, {"body", req.body().substr(0, 4096)}}
                   .dump(-1, ' ', false, json::error_handler_t::replace)  // protobuf bodies are not UTF-8
            << "\n";
    record_.flush();
  }

  // Non-HTTP facts tests assert on (e.g. a terminal resize a pod received).
  void RecordEvent(const std::string& event, const std::string& pod, const std::string& data) {
    if (!record_.is_open()) return;
    record_ << json{{"event", event}, {"pod", pod}, {"data", data}, {"target", ""}}.dump() << "\n";
    record_.flush();
  }

  awaitable<void> Session(Stream stream) {
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    co_await stream.async_handshake(ssl::stream_base::server, Redirect(ec));
    if (ec) co_return;
    beast::flat_buffer buffer;
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(3 << 20);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(300));
      co_await http::async_read(stream, buffer, parser, Redirect(ec));
      if (ec) break;
      beast::get_lowest_layer(stream).expires_never();
      Request req = parser.release();
      Record(req);
      bool keep = co_await Handle(stream, buffer, req);
      if (!keep) break;
    }
    beast::get_lowest_layer(stream).close();
  }

  awaitable<bool> Reply(Stream& s, const Request& req, int code, const json& body) {
    http::response<http::string_body> res(static_cast<http::status>(code), req.version());
    res.set(http::field::content_type, "application/json");
    res.set("Audit-Id", "testserver");
    res.body() = body.dump();
    res.keep_alive(req.keep_alive());
    // As kube-apiserver's answers come: its handlers write the encoded
    // object without a Content-Length, and Go's net/http (server.go,
    // bufferBeforeChunkingSize = 2048) sets one only when the whole answer
    // fits in that buffer; a larger one goes chunked (HTTP/1.1).
    if (res.body().size() > 2048 && req.version() >= 11) {
      res.chunked(true);
    } else {
      res.prepare_payload();
    }
    beast::error_code ec;
    co_await http::async_write(s, res, Redirect(ec));
    co_return !ec && req.keep_alive();
  }

  awaitable<bool> Fail(Stream& s, const Request& req, int code, std::string_view reason, std::string_view msg) {
    co_return co_await Reply(s, req, code, StatusBody(code, std::string(reason), std::string(msg)));
  }

  // The CN of a client certificate that verified against --client-ca.
  static std::string VerifiedClientCn(Stream& s) {
    X509* cert = SSL_get1_peer_certificate(s.native_handle());
    if (!cert) return "";
    std::string cn;
    if (SSL_get_verify_result(s.native_handle()) == X509_V_OK) {
      char buf[256] = {0};
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
      cn = buf;
    }
    X509_free(cert);
    return cn;
  }

  awaitable<bool> Handle(Stream& s, beast::flat_buffer& buffer, Request& req) {
    std::string cert_user = VerifiedClientCn(s);
    if (!cert_user.empty()) RecordEvent("client-certificate", "", cert_user);
    if (cert_user.empty() && std::string(req[http::field::authorization]) != "Bearer " + opts_.token) {
      co_return co_await Fail(s, req, 401, "Unauthorized", "Unauthorized");
    }
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    auto decoded = PathUnescape(path);
    if (!decoded) co_return co_await Fail(s, req, 400, "BadRequest", "bad path");
    QueryValues q = ParseQuery(target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1));
    std::vector<std::string> p = Split(*decoded);

    if (auto doc = DiscoveryDoc(*decoded, p, opts_.server_address)) {
      co_return co_await Reply(s, req, doc->first, doc->second);
    }
    if (p.size() < 3 || (p[0] != "api" && p[0] != "apis")) {
      co_return co_await Fail(s, req, 404, "NotFound", "the server could not find the requested resource");
    }
    // Resource requests.
    std::size_t at = 1;
    std::string group;
    if (p[0] == "apis") group = p[at++];
    std::string version = p[at++];
    // Groups and versions are literal route segments: never empty.
    if (version.empty() || (p[0] == "apis" && group.empty())) {
      co_return co_await Fail(s, req, 404, "NotFound", "the server could not find the requested resource");
    }
    std::string ns;
    if (at + 1 < p.size() && p[at] == "namespaces" && at + 2 < p.size()) {
      ns = p[at + 1];
      at += 2;
    }
    std::vector<std::string> rest(p.begin() + static_cast<std::ptrdiff_t>(at), p.end());
    // No route has more than RESOURCE/NAME/SUBRESOURCE after the namespace
    // (the proxy subresources, which take a path, are not served here).
    if (rest.empty() || rest.size() > 3 || rest[0].empty()) {
      co_return co_await Fail(s, req, 404, "NotFound", "the server could not find the requested resource");
    }
    const ResourceType* t = FindType(group, version, rest[0]);
    if (!t) co_return co_await Fail(s, req, 404, "NotFound", "the server could not find the requested resource");
    std::string name = rest.size() > 1 ? rest[1] : "";
    std::string sub = rest.size() > 2 ? rest[2] : "";
    if (t->resource == "namespaces" && !name.empty()) ns = "";
    if (t->resource == "namespaces" && rest.size() == 1 && !ns.empty()) {
      name = ns;  // /api/v1/namespaces/{ns}
      ns = "";
    }

    if (sub == "exec" || sub == "attach" || sub == "portforward") {
      auto pod = store_.Get(*FindType("", "v1", "pods"), ns, name);
      if (auto* e = std::get_if<StoreError>(&pod)) co_return co_await Fail(s, req, e->code, e->reason, e->message);
      if (IsSpdyUpgrade(req)) co_return co_await ServeSpdy(s, buffer, req, name, sub, q);
      if (sub == "portforward") co_return co_await PortForwardOverWebSocket(s, req, name);
      co_return co_await Exec(s, buffer, req, ns, name, sub, q);
    }
    if (sub == "log") co_return co_await Logs(s, req, ns, name, q);
    if ((t->resource == "serviceaccounts" && sub == "token") || t->resource == "tokenreviews") {
      co_return co_await ServeTokens(s, req, *t, ns, name);
    }
    if (!sub.empty() && sub != "status" && sub != "scale") {
      co_return co_await Fail(s, req, 404, "NotFound", "the server could not find the requested resource");
    }
    if ((req.method() == http::verb::get || req.method() == http::verb::head) && name.empty()) {
      if (q.Has("watch") && q.First("watch") != "false" && q.First("watch") != "0") {
        co_return co_await Watch(s, req, *t, ns, q);
      }
      co_return co_await List(s, req, *t, ns, q);
    }
    auto answer = Crud(req, *t, ns, name, sub, q);
    co_return co_await Reply(s, req, answer.first, answer.second);
  }

  // TokenRequest and TokenReview (service_account_tokens.h names the
  // Kubernetes sources they follow).
  awaitable<bool> ServeTokens(Stream& s, const Request& req, const ResourceType& t, const std::string& ns,
                              const std::string& name) {
    if (req.method() != http::verb::post) co_return co_await Fail(s, req, 405, "MethodNotAllowed", "create only");
    auto parsed = ParseBody(req);  // kubectl create token sends protobuf
    if (!parsed || !parsed->is_object()) co_return co_await Fail(s, req, 400, "BadRequest", "body is not an object");
    const json& body = *parsed;
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    const ResourceType& sa_type = *FindType("", "v1", "serviceaccounts");
    auto lookup = [&](const std::string& n, const std::string& nm) -> std::optional<json> {
      auto r = store_.Get(sa_type, n, nm);
      if (auto* j = std::get_if<json>(&r)) return *j;
      return std::nullopt;
    };
    std::pair<int, json> answer = t.resource == "tokenreviews" ? sa_tokens_.Review(body, lookup, now)
                                                                : sa_tokens_.Request(ns, name, lookup(ns, name), body, now);
    co_return co_await Reply(s, req, answer.first, answer.second);
  }

  static std::pair<int, json> Err(int code, const char* reason, const std::string& msg) {
    return {code, StatusBody(code, reason, msg)};
  }

  // Everything but list, watch, logs and exec: one JSON answer.
  std::pair<int, json> Crud(const Request& req, const ResourceType& t, const std::string& ns, const std::string& name,
                            const std::string& sub, const QueryValues& q) {
    auto result_of = [&](ObjectStore::Result r, int ok_code) -> std::pair<int, json> {
      if (auto* e = std::get_if<StoreError>(&r)) return {e->code, StatusBody(e->code, e->reason, e->message)};
      return {ok_code, std::get<json>(r)};
    };
    // CreateOptions / UpdateOptions / PatchOptions come from the query
    // (k8s.io/apiserver endpoints/handlers/create.go, update.go, patch.go):
    // every dryRun value must be "All" (ValidateDryRun), any dryRun at all
    // means nothing is persisted.
    std::vector<std::string> query_dry = q.All("dryRun");
    bool options_from_query = req.method() == http::verb::post || req.method() == http::verb::put ||
                              req.method() == http::verb::patch;
    if (auto bad = InvalidDryRun(query_dry); bad && options_from_query) return *bad;
    bool dry_run = !query_dry.empty();
    std::pair<int, json> out;
    switch (req.method()) {
      case http::verb::get:
      case http::verb::head:
        out = result_of(store_.Get(t, ns, name), 200);
        if (out.first == 200 && sub == "scale") out.second = ScaleOf(out.second);
        if (out.first == 200 && WantsTable(req)) out.second = Table(t, {out.second}, store_.resource_version());
        break;
      case http::verb::post: {
        if (!name.empty()) return Err(405, "MethodNotAllowed", "POST to a named object");
        auto body = ParseBody(req);
        if (!body) return Err(415, "UnsupportedMediaType", "test server reads JSON and the protobuf of ConfigMap, Secret, Namespace and SelfSubjectAccessReview");
        if (t.resource == "selfsubjectaccessreviews") {
          // Everyone may do everything here; the answer names who asked,
          // so tests see the identity the gateway impersonated.
          std::string user(req["Impersonate-User"]);
          (*body)["status"] = {{"allowed", true}, {"reason", "kube-testserver allows " + (user.empty() ? "the caller" : user)}};
          out = {201, *body};
          break;
        }
        if (dry_run) {
          out = {201, *body};
        } else {
          out = result_of(store_.Create(t, ns, *body), 201);
        }
        break;
      }
      case http::verb::put: {
        auto body = ParseBody(req);
        if (!body) return Err(415, "UnsupportedMediaType", "test server reads JSON and the protobuf of ConfigMap, Secret, Namespace and SelfSubjectAccessReview");
        out = dry_run ? std::pair<int, json>{200, *body} : result_of(store_.Update(t, ns, name, *body), 200);
        break;
      }
      case http::verb::patch: {
        auto patch = json::parse(req.body(), nullptr, false);
        if (patch.is_discarded()) return Err(400, "BadRequest", "patch is not JSON");
        std::string ct(req[http::field::content_type]);
        auto current = store_.Get(t, ns, name);
        if (std::holds_alternative<StoreError>(current)) {
          if (ct.rfind("application/apply-patch", 0) == 0) {
            out = dry_run ? std::pair<int, json>{201, patch} : result_of(store_.Create(t, ns, patch), 201);
            break;
          }
          out = result_of(current, 200);
          break;
        }
        json obj = std::get<json>(current);
        if (sub == "scale") {
          json scale = ScaleOf(obj);
          if (auto err = ApplyPatch(scale, ct, patch)) return Err(422, "Invalid", *err);
          obj["spec"]["replicas"] = scale["spec"]["replicas"];
        } else if (auto err = ApplyPatch(obj, ct, patch)) {
          return Err(422, "Invalid", *err);
        }
        out = dry_run ? std::pair<int, json>{200, obj} : result_of(store_.Update(t, ns, name, obj), 200);
        if (out.first == 200 && sub == "scale") out.second = ScaleOf(out.second);
        break;
      }
      case http::verb::delete_: {
        auto options = DeleteOptionsOf(req, q);
        if (auto* e = std::get_if<std::pair<int, json>>(&options)) return *e;
        bool delete_dry = std::get<bool>(options);
        if (name.empty()) {
          // deletecollection (delete.go DeleteCollection): the list options
          // (selectors) from the query, DeleteOptions as for one object.
          std::vector<json> items = store_.List(t, ns, Filter(q));
          json deleted = json::array();
          for (const auto& o : items) {
            std::string n = o["metadata"]["name"];
            std::string ons = o["metadata"].value("namespace", "");
            if (!delete_dry && std::holds_alternative<StoreError>(store_.Delete(t, ons, n))) continue;
            deleted.push_back(o);
          }
          out = {200, ListDoc(t, deleted, store_.resource_version())};
          break;
        }
        out = delete_dry ? result_of(store_.Get(t, ns, name), 200) : result_of(store_.Delete(t, ns, name), 200);
        break;
      }
      default:
        return Err(405, "MethodNotAllowed", "method not allowed");
    }
    return out;
  }

  // ValidateDryRun (k8s.io/apimachinery/pkg/apis/meta/v1/validation/
  // validation.go, called for Create/Update/Patch/DeleteOptions by the
  // handlers in k8s.io/apiserver endpoints/handlers/): only "All" is valid,
  // anything else is a 422 Invalid before anything runs.
  static std::optional<std::pair<int, json>> InvalidDryRun(const std::vector<std::string>& values) {
    for (const auto& v : values) {
      if (v != "All") return Err(422, "Invalid", "dryRun: Unsupported value: \"" + v + "\": supported values: \"All\"");
    }
    return std::nullopt;
  }

  // Whether a DELETE is a dry run, read as k8s.io/apiserver
  // endpoints/handlers/delete.go does (DeleteResource and DeleteCollection):
  // a non-empty body is decoded as DeleteOptions and the query is then
  // ignored; only an empty body lets the query's options count.
  static std::variant<bool, std::pair<int, json>> DeleteOptionsOf(const Request& req, const QueryValues& q) {
    std::vector<std::string> dry;
    if (!req.body().empty()) {
      auto opts = json::parse(req.body(), nullptr, false);
      if (!opts.is_object()) return Err(400, "BadRequest", "the body is not DeleteOptions");
      if (opts.contains("dryRun")) {
        if (!opts["dryRun"].is_array()) return Err(400, "BadRequest", "DeleteOptions.dryRun is not a list");
        for (const auto& v : opts["dryRun"]) {
          if (!v.is_string()) return Err(400, "BadRequest", "DeleteOptions.dryRun holds a non-string");
          dry.push_back(v.get<std::string>());
        }
      }
    } else {
      dry = q.All("dryRun");
    }
    if (auto bad = InvalidDryRun(dry)) return *bad;
    return !dry.empty();
  }

  static json ListDoc(const ResourceType& t, const std::vector<json>& items, std::uint64_t rv) {
    return {{"kind", t.kind + "List"}, {"apiVersion", t.group.empty() ? t.version : t.group + "/" + t.version},
            {"metadata", {{"resourceVersion", std::to_string(rv)}}}, {"items", items}};
  }

  static json ScaleOf(const json& obj) {
    return {{"kind", "Scale"}, {"apiVersion", "autoscaling/v1"},
            {"metadata", {{"name", obj["metadata"]["name"]}, {"namespace", obj["metadata"].value("namespace", "")},
                          {"resourceVersion", obj["metadata"]["resourceVersion"]}}},
            {"spec", {{"replicas", obj["spec"].value("replicas", 1)}}},
            {"status", {{"replicas", obj["spec"].value("replicas", 1)}}}};
  }

  static std::optional<json> ParseBody(const Request& req) {
    std::string ct(req[http::field::content_type]);
    if (ct.find("protobuf") != std::string::npos) return DecodeKubernetesProtobuf(req.body());
    auto j = json::parse(req.body(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  std::function<bool(const json&)> Filter(const QueryValues& q) {
    std::string field = q.First("fieldSelector").value_or("");
    std::string label = q.First("labelSelector").value_or("");
    return [field, label](const json& o) {
      if (field.rfind("metadata.name=", 0) == 0 && o["metadata"]["name"] != field.substr(14)) return false;
      if (!label.empty()) {
        auto eq = label.find('=');
        std::string k = label.substr(0, eq);
        const json& labels = o["metadata"].value("labels", json::object());
        if (eq == std::string::npos) return labels.contains(k);
        return labels.contains(k) && labels[k] == label.substr(eq + 1);
      }
      return true;
    };
  }

  awaitable<bool> List(Stream& s, const Request& req, const ResourceType& t, const std::string& ns,
                       const QueryValues& q) {
    auto items = store_.List(t, ns, Filter(q));
    if (WantsTable(req)) co_return co_await Reply(s, req, 200, Table(t, items, store_.resource_version()));
    json list = ListDoc(t, items, store_.resource_version());
    co_return co_await Reply(s, req, 200, list);
  }

  // Sends a 200 head for a chunked body of `content_type`; the caller then
  // writes chunks and the last chunk.
  static awaitable<beast::error_code> StartChunked(Stream& s, const Request& req, const char* content_type) {
    http::response<http::empty_body> res(http::status::ok, req.version());
    res.set(http::field::content_type, content_type);
    res.set(http::field::transfer_encoding, "chunked");
    http::response_serializer<http::empty_body> sr(res);
    beast::error_code ec;
    co_await http::async_write_header(s, sr, Redirect(ec));
    co_return ec;
  }

  // A chunked stream of watch events, newline-terminated, until
  // timeoutSeconds or the server's own --max-watch-seconds passes.
  // Returns when the peer (the gateway) closes or resets the connection:
  // recorded as a "peer-closed" event naming `target`, so tests see that
  // a streamed answer's upstream side was closed by the gateway, not by
  // the test server's own deadline. Bytes the peer sends are discarded.
  awaitable<void> PeerCloses(Stream& s, std::string target) {
    std::array<char, 512> sink;
    beast::error_code ec;
    while (!ec) co_await s.async_read_some(asio::buffer(sink), Redirect(ec));
    if (ec != asio::error::operation_aborted) RecordEvent("peer-closed", "", target);
  }

  awaitable<bool> Watch(Stream& s, const Request& req, const ResourceType& t, const std::string& ns,
                        const QueryValues& q) {
    using namespace asio::experimental::awaitable_operators;
    auto which = co_await (WatchEvents(s, req, t, ns, q) || PeerCloses(s, std::string(req.target())));
    co_return which.index() == 0 && std::get<0>(which);
  }

  awaitable<bool> WatchEvents(Stream& s, const Request& req, const ResourceType& t, const std::string& ns,
                              const QueryValues& q) {
    beast::error_code ec = co_await StartChunked(s, req, "application/json");
    if (ec) co_return false;
    std::uint64_t since = store_.resource_version();
    if (auto rv = q.First("resourceVersion"); rv && !rv->empty() && *rv != "0") {
      std::from_chars(rv->data(), rv->data() + rv->size(), since);  // unparseable: from now
    }
    auto filter = Filter(q);
    bool table = WantsTable(req);
    if (!q.Has("resourceVersion") || q.First("resourceVersion") == "0") {
      for (auto& o : store_.List(t, ns, filter)) {
        std::string line = json{{"type", "ADDED"}, {"object", table ? Table(t, {o}, since) : o}}.dump() + "\n";
        co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), Redirect(ec));
        if (ec) co_return false;
      }
    }
    int limit = opts_.max_watch_seconds;
    if (auto ts = q.First("timeoutSeconds")) limit = std::min(limit, std::atoi(ts->c_str()));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limit);
    asio::steady_timer wake(ioc_);
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& e : store_.EventsSince(since, t)) {
        since = e.rv;
        if (!ns.empty() && e.object["metadata"].value("namespace", "") != ns && t.namespaced) continue;
        if (!filter(e.object)) continue;
        std::string line = json{{"type", e.type}, {"object", table ? Table(t, {e.object}, e.rv) : e.object}}.dump() + "\n";
        co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), Redirect(ec));
        if (ec) co_return false;
      }
      wake.expires_at(deadline);
      // Registered for as long as the wait lasts, also when the watch is
      // cancelled (its peer closed) and this frame is destroyed mid-wait.
      struct Registration {
        std::list<asio::steady_timer*>& list;
        std::list<asio::steady_timer*>::iterator at;
        ~Registration() { list.erase(at); }
      };
      auto& list = waiters_[ObjectStore::TypeKey(t)];
      Registration registered{list, list.insert(list.end(), &wake)};
      co_await wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    co_await asio::async_write(s, http::make_chunk_last(), Redirect(ec));
    co_return !ec && req.keep_alive();
  }

  // logs: a few lines; with follow=true each line is its own chunk,
  // 100 ms apart, then the stream ends (the container exits).
  awaitable<bool> Logs(Stream& s, const Request& req, const std::string& ns, const std::string& name,
                       const QueryValues& q) {
    auto pod = store_.Get(*FindType("", "v1", "pods"), ns, name);
    if (auto* e = std::get_if<StoreError>(&pod)) co_return co_await Fail(s, req, e->code, e->reason, e->message);
    bool follow = q.First("follow") == "true";
    if (follow && name.rfind("quiet-", 0) == 0) {
      // A container that says one line and then nothing, until the
      // watch deadline: what an abandoned `logs -f` looks like upstream.
      using namespace asio::experimental::awaitable_operators;
      auto quiet = [&]() -> awaitable<void> {
        beast::error_code e = co_await StartChunked(s, req, "text/plain");
        std::string line = "one line from " + name + "\n";
        if (!e) co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), Redirect(e));
        asio::steady_timer t(ioc_);
        t.expires_after(std::chrono::seconds(opts_.max_watch_seconds));
        if (!e) co_await t.async_wait(Redirect(e));
        if (!e) co_await asio::async_write(s, http::make_chunk_last(), Redirect(e));
      };
      co_await (quiet() || PeerCloses(s, std::string(req.target())));
      co_return false;
    }
    beast::error_code ec = co_await StartChunked(s, req, "text/plain");
    asio::steady_timer tick(ioc_);
    for (int i = 1; i <= 3 && !ec; ++i) {
      std::string line = "log line " + std::to_string(i) + " from " + name + "\n";
      co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), Redirect(ec));
      if (follow) {
        tick.expires_after(std::chrono::milliseconds(100));
        co_await tick.async_wait(Redirect(ec));
      }
    }
    co_await asio::async_write(s, http::make_chunk_last(), Redirect(ec));
    co_return !ec && req.keep_alive();
  }

  static bool IsSpdyUpgrade(const Request& req) {
    return beast::iequals(req[http::field::upgrade], "SPDY/3.1");
  }

  // SPDY/3.1 exec, attach and port-forward: a 101 naming the chosen
  // X-Stream-Protocol-Version, then SPDY frames on the raw connection.
  awaitable<bool> ServeSpdy(Stream& s, beast::flat_buffer& buffer, const Request& req, const std::string& pod,
                            const std::string& sub, const QueryValues& q) {
    std::string chosen;
    for (const auto& f : req) {
      if (f.name_string() == "X-Stream-Protocol-Version" && chosen.empty()) chosen = std::string(f.value());
    }
    http::response<http::empty_body> res(http::status::switching_protocols, 11);
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, "SPDY/3.1");
    res.set("X-Stream-Protocol-Version", chosen);
    beast::error_code ec;
    std::unique_ptr<SpdyPodSession> session;
    if (sub == "portforward") {
      session = std::make_unique<SpdyPodSession>(pod);
    } else {
      ExecParams p;
      p.command = sub == "attach" ? std::vector<std::string>{"sh"} : q.All("command");
      p.stdin_ = q.First("stdin") == "true";
      p.stdout_ = q.First("stdout") == "true";
      p.stderr_ = q.First("stderr") == "true";
      p.tty = q.First("tty") == "true";
      session = std::make_unique<SpdyPodSession>(pod, p, &pod_files_[pod]);
    }
    // The 101 and the answer to whatever arrived with the upgrade go out in
    // one write, as a real API server may send them in one TLS record: the
    // gateway must handle frames that arrive with the head.
    std::string out = session->Feed(beast::buffers_to_string(buffer.data()));
    buffer.consume(buffer.size());
    std::ostringstream head;
    head << res;
    out.insert(0, head.str());
    asio::steady_timer sleeper(ioc_);
    std::vector<char> in(16 * 1024);
    std::size_t resizes_recorded = 0;
    while (!ec && !session->finished()) {
      if (!out.empty()) {
        co_await asio::async_write(s, asio::buffer(out), Redirect(ec));
        out.clear();
        if (ec) break;
      }
      if (auto ms = session->sleeping_ms()) {
        sleeper.expires_after(std::chrono::milliseconds(*ms));
        co_await sleeper.async_wait(Redirect(ec));
        out = session->WakeUp();
        continue;
      }
      // After the exit Status the client closes; give it a moment.
      beast::get_lowest_layer(s).expires_after(session->status_sent() ? std::chrono::seconds(10) : std::chrono::hours(4));
      std::size_t n = co_await s.async_read_some(asio::buffer(in), Redirect(ec));
      out = session->Feed(std::string_view(in.data(), n));
      auto resizes = session->seen_resizes();
      for (; resizes_recorded < resizes.size(); ++resizes_recorded) RecordEvent("resize", pod, resizes[resizes_recorded]);
    }
    co_return false;
  }

  static const char* UpgradeRequired() {
    return "exec, attach and port-forward need an upgrade: WebSocket or SPDY/3.1";
  }

  // Accepts the upgrade in `req`, answering with `subprotocol`; binary messages.
  static awaitable<beast::error_code> AcceptWebSocket(websocket::stream<Stream&>& ws, Request& req,
                                                      const char* subprotocol) {
    ws.set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& r) {
      r.set(http::field::sec_websocket_protocol, subprotocol);
    }));
    ws.binary(true);
    beast::error_code ec;
    co_await ws.async_accept(req, Redirect(ec));
    co_return ec;
  }

  // Port-forward over WebSocket (kubectl 1.31+): subprotocol
  // SPDY/3.1+portforward.k8s.io, each binary message a piece of a SPDY stream.
  awaitable<bool> PortForwardOverWebSocket(Stream& s, Request& req, const std::string& pod) {
    if (!websocket::is_upgrade(req)) co_return co_await Fail(s, req, 400, "BadRequest", UpgradeRequired());
    websocket::stream<Stream&> ws(s);
    beast::error_code ec = co_await AcceptWebSocket(ws, req, "SPDY/3.1+portforward.k8s.io");
    SpdyPodSession session(pod);
    while (!ec && !session.finished()) {
      beast::flat_buffer msg;
      co_await ws.async_read(msg, Redirect(ec));
      if (ec) break;
      std::string out = session.Feed(beast::buffers_to_string(msg.data()));
      if (!out.empty()) co_await ws.async_write(asio::buffer(out), Redirect(ec));
    }
    co_return false;
  }

  // exec/attach over WebSocket (v5.channel.k8s.io): [channel][payload]
  // messages; stdin on 0, stdout 1, stderr 2, Status on 3, resize on 4,
  // close-stream 0xFF ch.
  awaitable<bool> Exec(Stream& s, beast::flat_buffer& buffer, Request& req, const std::string& ns,
                       const std::string& name, const std::string& sub, const QueryValues& q) {
    if (!websocket::is_upgrade(req)) co_return co_await Fail(s, req, 400, "BadRequest", UpgradeRequired());
    websocket::stream<Stream&> ws(s);
    beast::error_code ec = co_await AcceptWebSocket(ws, req, "v5.channel.k8s.io");
    if (ec) co_return false;
    std::vector<std::string> argv = sub == "attach" ? std::vector<std::string>{"sh"} : q.All("command");
    bool tty = q.First("tty") == "true";
    TinyShell shell(argv, tty, &pod_files_[name]);
    auto send = [&](int ch, const std::string& data) -> awaitable<void> {
      if (data.empty()) co_return;
      std::string msg(1, static_cast<char>(ch));
      msg += data;
      beast::error_code e;
      co_await ws.async_write(asio::buffer(msg), Redirect(e));
    };
    asio::steady_timer sleeper(ioc_);
    // A container's process takes milliseconds to start, and kubectl 1.30+
    // relies on that: its WebSocket client reads before it has made its
    // streams and drops what comes first ("Unknown stream id", client-go
    // tools/remotecommand/websocket.go, readDemuxLoop), so output sent with
    // the 101 fails `kubectl exec` now and then. The first output waits
    // kExecStartMs, as a process start would.
    sleeper.expires_after(std::chrono::milliseconds(kExecStartMs));
    co_await sleeper.async_wait(Redirect(ec));
    co_await send(1, shell.Start());
    while (!shell.done()) {
      if (auto ms = shell.sleeping_ms()) {
        sleeper.expires_after(std::chrono::milliseconds(*ms));
        co_await sleeper.async_wait(Redirect(ec));
        co_await send(1, shell.WakeUp());
        continue;
      }
      beast::flat_buffer in;
      co_await ws.async_read(in, Redirect(ec));
      if (ec) co_return false;
      std::string msg = beast::buffers_to_string(in.data());
      if (msg.empty()) continue;
      unsigned char ch = static_cast<unsigned char>(msg[0]);
      std::string payload = msg.substr(1);
      if (ch == 0) co_await send(1, shell.Input(payload));
      if (ch == 4) RecordEvent("resize", name, payload);
      if (ch == 0xFF && !payload.empty() && payload[0] == 0) co_await send(1, shell.CloseStdin());
    }
    json status = shell.exit_code() == 0
                      ? json{{"metadata", json::object()}, {"status", "Success"}}
                      : json{{"metadata", json::object()}, {"status", "Failure"},
                             {"message", "command terminated with non-zero exit code: exit status " +
                                             std::to_string(shell.exit_code())},
                             {"reason", "NonZeroExitCode"},
                             {"details", {{"causes", {{{"reason", "ExitCode"},
                                                       {"message", std::to_string(shell.exit_code())}}}}}}};
    co_await send(3, status.dump());
    co_await ws.async_close(websocket::close_code::normal, Redirect(ec));
    (void)buffer;
    co_return false;
  }

  asio::io_context& ioc_;
  ssl::context& ctx_;
  Options opts_;
  ObjectStore store_;
  ServiceAccountTokens sa_tokens_;
  // Watches waiting for an event, by ObjectStore::TypeKey.
  std::map<std::string, std::list<asio::steady_timer*>> waiters_;
  std::map<std::string, PodFiles> pod_files_;  // by pod name
  std::ofstream record_;
};

}  // namespace
}  // namespace kubegate::testserver

int main(int argc, char** argv) {
  using namespace kubegate;
  using namespace kubegate::testserver;
  CLI::App app{"kube-testserver: a demo Kubernetes API server for kubegate's tests (NOT a cluster)"};
  std::string data_dir = "testserver-data", address = "127.0.0.1", kubeconfig_out, port_file;
  int port = 0;
  Options opts;
  opts.token = "testserver-admin-token";
  app.add_option("--data-dir", data_dir, "Where its CA and serving certificate live");
  app.add_option("--address", address, "Listen address (loopback)");
  app.add_option("--port", port, "Listen port (0: any free port)");
  app.add_option("--token", opts.token, "The bearer token it accepts (the gateway's credential)");
  app.add_option("--record", opts.record_file, "Append each received request (method, target, headers) as JSON");
  app.add_option("--kubeconfig-out", kubeconfig_out, "Write an admin kubeconfig for it here");
  app.add_option("--port-file", port_file, "Write the bound port here once listening");
  std::string client_ca;
  app.add_option("--client-ca", client_ca, "Also accept client certificates signed by this CA (like --client-ca-file)");
  app.add_option("--max-watch-seconds", opts.max_watch_seconds, "End watches after this (the API server's min-request-timeout)");
  CLI11_PARSE(app, argc, argv);

  auto pki = EnsureGatewayPki(data_dir, {});
  if (!pki) {
    std::cerr << pki.error().message << "\n";
    return 2;
  }
  // Declared before the io_context, so it outlives it: the context destroys
  // the coroutine frames still suspended (open watches) when it goes, and a
  // watch's frame unregisters itself from the server's lists then.
  std::optional<Server> server;
  boost::asio::io_context ioc{1};
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_server};
  ctx.use_certificate_chain_file(pki->server_cert_file);
  ctx.use_private_key_file(pki->server_key_file, boost::asio::ssl::context::pem);
  if (!client_ca.empty()) {
    ctx.load_verify_file(client_ca);
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
  }
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address(address), static_cast<unsigned short>(port)});
  port = acceptor.local_endpoint().port();
  opts.server_address = address + ":" + std::to_string(port);
  if (!kubeconfig_out.empty()) {
    CallerKubeconfig k;
    k.server = "https://" + opts.server_address;
    k.ca_pem = *ReadFile(pki->ca_cert_file);
    k.user = "testserver-admin";
    k.token = opts.token;
    if (auto w = WriteFileAtomic(kubeconfig_out, RenderKubeconfig(k), 0600); !w) {
      std::cerr << w.error().message << "\n";
      return 2;
    }
  }
  if (!port_file.empty()) {
    if (auto w = WriteFileAtomic(port_file, std::to_string(port) + "\n", 0644); !w) {
      std::cerr << w.error().message << "\n";
      return 2;
    }
  }
  std::cout << "*** kube-testserver: a DEMO API server for tests, NOT a Kubernetes cluster ***\n"
            << "kube-testserver listening on https://" << opts.server_address << std::endl;
  server.emplace(ioc, ctx, opts);
  boost::asio::co_spawn(ioc, server->Accept(acceptor), boost::asio::detached);
  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code&, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
