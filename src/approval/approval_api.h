// The approvals REST API, served by the gateway to authenticated callers:
//
//   GET  /kubegate/v1/approvals[?state=pending|approved|...][&format=json|text]
//   GET  /kubegate/v1/approvals/ID[?format=json|text]
//   POST /kubegate/v1/approvals/ID/approve   {"reason": "...", "for": "15m", "scope": ["exact" | "any-command" | "any-name" | "reads", ...]}
//   POST /kubegate/v1/approvals/ID/deny      {"reason": "..."}
//   GET  /kubegate/v1/grants[?all=true]
//   POST /kubegate/v1/grants/ID/revoke       {"reason": "..."}
//
// Every decision is checked by ApprovalService against the rule's
// approvers with the caller's own kubegate identity. Plain C++: the network
// layer runs it on its store thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "approval/approval.h"

namespace kubegate {

inline constexpr std::string_view kApprovalApiPrefix = "/kubegate/v1/approvals";
inline constexpr std::string_view kGrantApiPrefix = "/kubegate/v1/grants";

bool IsApprovalApiPath(std::string_view path);

struct ApprovalApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // A decision was made (for notifications): the request after it.
  std::optional<ApprovalRequest> decided;
};

// Who sees what: a caller sees its own requests and grants; an approver
// also those of the rules it may decide; an auditor (`auditor`) sees all.
// Requests and grants a caller may not see answer 404, as unknown ones do.
ApprovalApiResponse RunApprovalApi(ApprovalService& svc, const Identity& caller, bool auditor, std::string_view method,
                                   std::string_view path, std::string_view raw_query, std::string_view body);

// What `show` prints: the request in words a person reads quickly.
// A grant in one line: "get secrets named db in namespace prod, ..., 15
// minutes left, 1 use left".
std::string DescribeGrant(const Grant& g, std::int64_t now_ms);
std::string DescribeApproval(const ApprovalRequest& r, std::int64_t now_ms);
// A write's body for approvers, from RedactRequestBody's output: the
// object's kind and name, then its (redacted) JSON, cut at
// kBodySummaryChars; a non-JSON body by size only.
inline constexpr std::size_t kBodySummaryChars = 400;
std::string SummarizeRequestBody(const nlohmann::json& redacted);
// The API server's answer to a server-side dry run, in one line:
// "would succeed (HTTP 200, Namespace demo)" or "would fail: HTTP 404
// NotFound: ...".
std::string DescribeDryRunAnswer(int status, std::string_view body);
// The 403 message of an answer-at-once rule (kubectl prints it verbatim).
std::string PendingInstructions(const ApprovalRequest& r);

}  // namespace kubegate
