// The approvers' server-side dry run of a held write, built so that the API
// server reads it as a dry run, and checked by reading it back the way the
// API server will before it may be sent.
//
// Where the API server takes dryRun from (WIRE.md §8):
//   create, update, patch          the query's dryRun values, all "All"
//                                  (k8s.io/apiserver endpoints/handlers/
//                                  create.go, update.go, patch.go)
//   delete, deletecollection       DeleteOptions from the body when the body
//                                  is non-empty, and then the query is
//                                  ignored; the query only for an empty body
//                                  (endpoints/handlers/delete.go)
// So a DELETE's dry run carries dryRun: ["All"] inside its body: merged into
// the caller's JSON DeleteOptions, or a new body when the caller sent none.
// A body kubegate cannot rewrite (protobuf, not a JSON object) means no dry
// run at all.
//
//   auto dr = BuildApproversDryRun({"DELETE", "/api/v1/namespaces/prod", "", "{\"propagationPolicy\":\"Background\"}"});
//   if (!dr) note = "not run: " + dr.error().message;
//   else send(dr->request);      // dr->info.dry_run is true, by construction
#pragma once

#include <string>

#include "classify/request_info.h"
#include "common/result.h"

namespace kubegate {

// An HTTP request kubegate sends on its own behalf, as it goes on the wire
// (headers other than Content-Type are the sender's business).
struct OwnRequest {
  std::string method;
  std::string target;
  std::string content_type;
  std::string body;
};

// Reads an outgoing request exactly as the API server will: the target by
// RequestInfo's rules, and for DELETE the DeleteOptions body.
Result<RequestInfo> ClassifyOwnRequest(const OwnRequest& r);

struct DryRunRequest {
  OwnRequest request;
  RequestInfo info;  // ClassifyOwnRequest(request); info.dry_run is true
};

// The dry run of `held` (a write the API server honours dryRun for). Fails
// (the dry run is then not sent) when the request is not such a write, when
// its body cannot be rewritten, or when the result would not read as a dry
// run of the same action.
Result<DryRunRequest> BuildApproversDryRun(const OwnRequest& held);

}  // namespace kubegate
