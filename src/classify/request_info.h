// RequestInfo: what a request does, read by kube-apiserver's own rules
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, WIRE.md §9), plus
// what kubegate needs on top (exec argv, streaming kind, dry-run).
//
//   auto info = ClassifyRequest("DELETE", "/api/v1/namespaces/prod");
//   if (!info) return info.error();         // a 400 Status
//   if (NeedsBodyToClassify(*info)) ApplyDeleteBody(*info, content_type, body);
//   info->verb == "delete"; info->resource == "namespaces"; info->name == "prod";
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace kubegate {

// The streaming subresources kubegate treats specially, identified by path
// (WebSocket exec is a GET, SPDY exec a POST).
enum class StreamKind { kNone, kExec, kAttach, kPortForward };

struct ExecInfo {
  std::string container;
  std::vector<std::string> command;  // repeated command= values, in order
  bool stdin_ = false;
  bool stdout_ = false;
  bool stderr_ = false;
  bool tty = false;
};

struct RequestInfo {
  // Fields of the API server's RequestInfo.
  bool is_resource_request = false;
  std::string path;
  std::string verb;
  std::string api_prefix;
  std::string api_group;
  std::string api_version;
  std::string namespace_;
  std::string resource;
  std::string subresource;
  std::string name;
  std::vector<std::string> parts;

  // kubegate's additions.
  StreamKind stream = StreamKind::kNone;
  std::optional<ExecInfo> exec;   // for exec and attach
  std::vector<std::string> ports;  // port-forward's ports= values, if any
  // True only when the API server will certainly not persist the request:
  // dryRun=All in the query (or, for DELETE, in a DeleteOptions body) of a
  // write to an object. Never for reads or connect subresources, where the
  // API server ignores dryRun.
  bool dry_run = false;
  std::string raw_query;
};

// Classifies METHOD and request target. Fails with 400 where the API server
// would fail or where kubegate cannot be sure it reads the request as the
// API server does.
Result<RequestInfo> ClassifyRequest(std::string_view method, std::string_view target);

// A write: create, update, patch, delete or deletecollection, not an
// exec/attach/port-forward stream. Its body may be recorded, and a held
// one is shown to approvers as a dry run first.
bool IsWrite(const RequestInfo& info);

// Whether the API server applies dryRun to this request: writes to objects
// only (not reads, not exec/attach/portforward/proxy).
bool HonoursDryRun(const RequestInfo& info);

// DELETE (and deletecollection) carry dry-run in their DeleteOptions body.
bool NeedsBodyToClassify(const RequestInfo& info);

// Reads DeleteOptions.dryRun from a DELETE body as the API server does: a
// non-empty body replaces the query's options. Only JSON bodies are read;
// any other body leaves dry_run false (the safe reading).
void ApplyDeleteBody(RequestInfo& info, std::string_view content_type, std::string_view body);

// The query parameters the API server acts on for this request, decoded as
// Go does, sorted by key (a key's values keep their order): what an approval
// and a grant are bound to. Left out: parameters that only page, time or
// format a read (resourceVersion, limit, continue, timeoutSeconds, timeout,
// allowWatchBookmarks, sendInitialEvents, resourceVersionMatch, pretty),
// `watch` (the verb says it), and exec's command and container (ExecInfo
// holds them).
std::vector<std::pair<std::string, std::string>> ActingQuery(const RequestInfo& info);

// The label and field selectors of the query, in ActingQuery's form.
std::vector<std::pair<std::string, std::string>> SelectorQuery(const RequestInfo& info);

// JSON for `kubegate classify` and logs.
std::string ToJson(const RequestInfo& info);

const char* StreamKindName(StreamKind k);

}  // namespace kubegate
