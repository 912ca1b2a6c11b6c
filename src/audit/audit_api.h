// The audit log's read-only REST API, served by the gateway to auditors:
//
//   GET /kubegate/v1/audit?user=&group=&kind=&verb=&resource=&namespace=
//       &name=&decision=&approver=&approval_id=&since=&until=&limit=
//       &format=json|jsonl|k8s|table
//   GET /kubegate/v1/audit?after_seq=N[&limit=]    export: every entry after
//       chain position N, in chain order, as JSON lines (format=jsonl)
//   GET /kubegate/v1/audit/ID[?format=json|text|k8s]
//
// since/until take RFC 3339 times or a duration back from now ("1h").
// Plain C++: the network layer parses nothing here and runs RunAuditApi on
// its store-reader thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "config/config.h"
#include "identity/identity.h"
#include "audit/audit_store.h"

namespace kubegate {

inline constexpr std::string_view kAuditApiPrefix = "/kubegate/v1/audit";

struct AuditApiRequest {
  bool show = false;   // one record by request id
  // Export: every entry (decisions and results) after this chain position,
  // in chain order, up to query.limit; -1: not an export. The last seq
  // printed is the next call's cursor.
  std::int64_t after_seq = -1;
  std::string request_id;
  AuditQuery query;
  std::string format;  // json (default), jsonl, k8s, table, text (show only)
  // GET .../audit/ID/recording: the session's recording file, checked
  // against its record; read from recording_dir (set by the server).
  bool recording = false;
  std::string recording_dir;
};

struct AuditApiResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

bool IsAuditApiPath(std::string_view path);
// Only identities named in `auditors` (by user or group) read the log.
bool IsAuditor(const Identity& who, const AuditorsConfig& auditors);

// RFC 3339, or a duration meaning that long before `now_ms`.
Result<std::int64_t> ParseTimeBound(std::string_view text, std::int64_t now_ms);

// Refuses what would silently print nothing or the wrong thing: unknown
// formats, decision other than allow|deny|review, kind other than
// human|agent; splits "pods/exec" into resource and subresource.
Result<bool> ValidateAuditQuery(AuditApiRequest& r);

Result<AuditApiRequest> ParseAuditApiRequest(std::string_view path, std::string_view raw_query, std::int64_t now_ms);
AuditApiResponse RunAuditApi(AuditStore& store, const AuditApiRequest& req);

}  // namespace kubegate
