// The content of audit records: what kubegate writes about each request,
// in two phases. The decision record is committed before the request is
// forwarded; the result record is appended when it completes. Both are
// JSON, written straight in canonical form (audit/canonical_json.h) and
// hashed into the chain (audit_entry.h).
//
// A reviewer's questions and where the answer is:
//   who acted                  identity.{user,groups,kind,auth,source}
//   what was asked             request.{method,target,verb,...,exec,dryRun}, kubectl.{command,session}
//   did it need approval, why  decision.{action,rule,message}
//   who approved, what scope   approval.{id,approvers[],scope,grant_id,waited_ms} (filled by the approval stage)
//   what happened              result.{status,bytes_in,bytes_out,duration_ms,error}; recording_id
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "audit/audit_entry.h"
#include "classify/request_info.h"
#include "identity/identity.h"

namespace kubegate {

struct DecisionFacts {
  std::string request_id;
  std::int64_t received_ms = 0;
  const Identity* who = nullptr;  // null: the caller was not authenticated
  std::string source;             // peer address
  std::string method;
  std::string target;
  std::string user_agent;
  std::string kubectl_command;  // Kubectl-Command header
  std::string kubectl_session;  // Kubectl-Session header
  const RequestInfo* info = nullptr;  // null: the request could not be classified
  std::string action;   // allow, deny, review
  std::string rule;     // what decided
  std::string message;  // shown to the caller on denial
  nlohmann::json approval = nlohmann::json::object();  // the approval stage fills this
  nlohmann::json identity_change;  // kubegate's API issued or revoked a credential: what
  std::string recording_id;
  // The namespace labels a namespaceSelector rule was decided with, if any.
  nlohmann::json namespace_labels;
  std::optional<nlohmann::json> request_body;  // from RedactRequestBody
  std::map<std::string, std::string> impersonated;  // headers sent upstream
};

struct ResultFacts {
  std::string request_id;
  std::int64_t completed_ms = 0;
  int status = 0;  // HTTP status returned to the caller (101 for upgrades)
  std::uint64_t bytes_in = 0;   // request body / caller->cluster stream bytes
  std::uint64_t bytes_out = 0;  // response body / cluster->caller stream bytes
  std::int64_t duration_ms = 0;
  std::string error;  // why kubegate answered instead of the cluster, if it did
  // An exec/attach/port-forward session's recording (RecordingSummary::ToJson
  // plus its file name): the hash links the file to this record.
  std::optional<nlohmann::json> recording;
};

// The entries (seq and hashes unset) of a request's two records: the
// canonical text written straight from the facts, and the index columns
// copied from them. Fails, as MakeEntry does, without a request id.
Result<AuditEntry> BuildDecisionEntry(const DecisionFacts& f);
Result<AuditEntry> BuildResultEntry(const ResultFacts& f);

// A request body as kept in an audit record: JSON bodies verbatim except
// that every Secret's data and stringData values (and for requests to the
// secrets resource, the top-level ones of a patch) become "<redacted>".
// Non-JSON bodies are summarized by size and SHA-256, never stored, and
// bodies are cut at limits::kAuditMaxStoredBody.
nlohmann::json RedactRequestBody(std::string_view resource, std::string_view content_type, std::string_view body);

}  // namespace kubegate
