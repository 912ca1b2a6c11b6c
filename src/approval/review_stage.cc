#include "approval/review_stage.h"

#include <spdlog/spdlog.h>

#include "approval/approval_api.h"
#include "audit/audit_record.h"
#include "classify/request_info_json.h"
#include "common/digest.h"
#include "common/limits.h"

namespace kubegate {

ReviewStep ReviewStage::Refuse(Error e, nlohmann::json approval) const {
  ReviewStep s;
  s.verdict = ReviewVerdict::kRefuse;
  s.refusal = std::move(e);
  s.approval = std::move(approval);
  return s;
}

ReviewStep ReviewStage::StoreDown(const Error& e) const {
  return Refuse(Error::Unavailable("kubegate cannot reach its approval store, so the request was not forwarded: " +
                                   e.message));
}

NewApproval ReviewStage::MakeNew(const ReviewRequest& r) const {
  nlohmann::json request = {{"method", r.method},
                            {"target", r.target},
                            {"kubectl_command", r.kubectl_command},
                            {"info", RequestInfoJson(*r.info)}};
  NewApproval n{r.request_id, r.who, r.info, r.rule, nlohmann::json::object()};
  if (r.body && !r.body->empty()) {
    request["body_summary"] = SummarizeRequestBody(RedactRequestBody(r.info->resource, r.content_type, *r.body));
    // The approval and any grant are bound to this body: a twin with
    // another body is another review.
    n.body_sha256 = Sha256Hex(*r.body);
  }
  n.request = std::move(request);
  return n;
}

ReviewStep ReviewStage::Start(const ReviewRequest& r) {
  if (!r.rule) return Refuse(Error::Internal("kubegate: a review without its rule"));
  // The approver sees which container a session runs in: an exec or attach
  // under review names it (kubectl always does, -c or its default). With
  // none the API server would pick one after approval.
  if (r.info->exec && r.info->exec->container.empty()) {
    return Refuse(Error::BadRequest("kubegate: an " + r.info->subresource + " that needs review must name its "
                                    "container (?container=NAME, kubectl -c NAME), so the approver sees where it runs"));
  }
  NewApproval n = MakeNew(r);

  // An automatic approver of the rule holds: approved by the policy itself.
  if (r.auto_approver) {
    auto opened = approvals_.OpenApprovedByPolicy(n, "policy:" + r.rule->name + "/" + r.auto_approver->name);
    if (!opened) return StoreDown(opened.error());
    auto grant = approvals_.GetGrant(opened->grant_id);
    const Grant* g = grant && *grant ? &**grant : nullptr;
    ReviewStep s;
    s.verdict = ReviewVerdict::kForward;
    s.approval = ApprovalAuditFacts(*opened, g, Waited(r));
    return s;
  }

  // A live grant from an earlier approval covers this request.
  const RequestedAction action{*r.info, n.body_sha256};
  auto grant = approvals_.UseGrant(*r.who, action, r.rule->name);
  if (!grant) return StoreDown(grant.error());
  if (*grant) {
    auto approved = approvals_.Get((*grant)->approval_id);
    if (!approved) return StoreDown(approved.error());
    ReviewStep s;
    s.verdict = ReviewVerdict::kForward;
    s.approval = ApprovalAuditFacts(*approved, &**grant, Waited(r));
    s.grant_id = (*grant)->id;
    s.grant_expires_ms = (*grant)->expires_ms;
    return s;
  }

  // Ask. Approvers see what the API server says of a write before
  // deciding, so its dry run comes first and is stored with the request.
  if (r.dry_run_possible) {
    ReviewStep s;
    s.verdict = ReviewVerdict::kDryRunFirst;
    return s;
  }
  return Ask(r, nullptr);
}

ReviewStep ReviewStage::Ask(const ReviewRequest& r, const nlohmann::json& dry_run) {
  NewApproval n = MakeNew(r);
  n.dry_run = dry_run;
  auto opened = approvals_.Open(n);
  if (!opened) return StoreDown(opened.error());
  const bool is_new = opened->id == r.request_id;  // not a joined twin
  nlohmann::json facts = ApprovalAuditFacts(*opened, nullptr, Waited(r));
  if (!r.rule->review.hold) {
    if (is_new && events_) events_->Notify("new", *opened);
    return Refuse(Error::Forbidden(PendingInstructions(*opened)), std::move(facts));
  }
  // Bounded twice: held connections on this process, and distinct pending
  // requests in the shared store (every replica's; this one included).
  auto ticket = quota_.TryHold(r.who->user);
  std::string over;
  if (!ticket) {
    over = "on this gateway";
  } else {
    auto pending = approvals_.CountPendingHolds(r.who->user);
    if (!pending) return StoreDown(pending.error());
    if (pending->of_requester > quota_.max_per_caller() || pending->total > quota_.max_total()) {
      over = "across the gateway's replicas";
    }
  }
  if (!over.empty()) {
    // Nobody waits on it: a new request is withdrawn, a twin leaves it.
    if (is_new) {
      (void)approvals_.Close(opened->id, ApprovalState::kWithdrawn, "refused: over the hold quota " + over);
    } else {
      (void)approvals_.HandOff(opened->id);
    }
    return Refuse(Error{429, "TooManyRequests",
                        "kubegate holds at most " + std::to_string(quota_.max_per_caller()) +
                            " requests per caller (and " + std::to_string(quota_.max_total()) +
                            " in all) waiting for approval " + over + "; wait for those to be decided"},
                  std::move(facts));
  }
  if (is_new && events_) events_->Notify("new", *opened);
  spdlog::info("request {} held for approval under rule {} (approval request {})", r.request_id, r.rule->name,
               opened->id);
  ReviewStep s;
  s.verdict = ReviewVerdict::kHold;
  s.approval = std::move(facts);
  s.approval_id = opened->id;
  s.hold_until_ms = opened->expires_ms;
  s.hold = std::move(ticket);
  return s;
}

ReviewStep ReviewStage::Resume(const ReviewRequest& r, ReviewStep held) {
  auto got = approvals_.Get(held.approval_id);  // a pending one past its limit comes back expired
  const std::int64_t now = clock_.NowMillis();
  if (!got) {
    // The store is down: wait on while it may come back; past the limit
    // (and a grace) the request was not approved in time.
    if (now <= held.hold_until_ms + kStoreGraceMs) {
      held.hold_until_ms = std::max(held.hold_until_ms, now + 1000);
      return held;
    }
    ApprovalRequest unknown;
    unknown.id = held.approval_id;
    unknown.state = ApprovalState::kExpired;
    unknown.reason = "the approval store could not be read: " + got.error().message;
    got = unknown;
  }
  if (got->state == ApprovalState::kPending) return held;  // a vote, not yet a decision
  ApprovalRequest decided = std::move(*got);
  if (decided.state == ApprovalState::kExpired && events_) events_->Notify("expired", decided);
  if (decided.state == ApprovalState::kApproved) return UseGrantOf(r, decided);
  std::string why;
  switch (decided.state) {
    case ApprovalState::kDenied:
      why = "was denied by " + decided.decided_by + ": " + decided.reason;
      break;
    case ApprovalState::kExpired: {
      const std::int64_t wait = r.rule->review.max_wait_ms;
      why = "was not approved within " + std::to_string(wait / 60000) + "m" +
            (wait % 60000 ? std::to_string(wait % 60000 / 1000) + "s" : "") + "; run the command again to ask again";
      break;
    }
    default:
      why = "was " + std::string(ApprovalStateName(decided.state)) + ": " + decided.reason;
  }
  return Refuse(Error::Forbidden("kubegate: request " + decided.id + " " + why + " (rule \"" + r.rule->name + "\"" +
                                 (r.rule->message.empty() ? "" : ": " + r.rule->message) + "). Nothing was done."),
                ApprovalAuditFacts(decided, nullptr, Waited(r)));
}

// The approved request itself takes the grant's first use. Only a request
// that obtains a use of the grant is forwarded: twins that waited on the
// same approval share its uses, never exceed them.
ReviewStep ReviewStage::UseGrantOf(const ReviewRequest& r, const ApprovalRequest& decided) {
  const std::string body_sha = r.body && !r.body->empty() ? Sha256Hex(*r.body) : std::string();
  auto used = approvals_.UseGrant(*r.who, RequestedAction{*r.info, body_sha}, r.rule->name);
  if (!used) return StoreDown(used.error());
  const Grant* g = *used ? &**used : nullptr;
  nlohmann::json facts = ApprovalAuditFacts(decided, g, Waited(r));
  if (!g) {
    return Refuse(Error::Forbidden("kubegate: request " + decided.id + " was approved, but its grant has no use left "
                                   "for this request (" + std::to_string(decided.asked) +
                                   " identical requests asked; each needs its own use). Nothing was done."),
                  std::move(facts));
  }
  ReviewStep s;
  s.verdict = ReviewVerdict::kForward;
  s.approval = std::move(facts);
  s.grant_id = g->id;
  s.grant_expires_ms = g->expires_ms;
  return s;
}

ReviewStep ReviewStage::Withdraw(const ReviewRequest& r, ReviewStep held, const std::string& why) {
  ReviewStep s;
  s.verdict = ReviewVerdict::kWithdrawn;
  s.approval = std::move(held.approval);
  auto closed = approvals_.Close(held.approval_id, ApprovalState::kWithdrawn, why + " while waiting");
  if (closed) s.approval = ApprovalAuditFacts(*closed, nullptr, Waited(r));
  return s;  // `held`, and its hold, end here
}

ReviewStep ReviewStage::Cancel(const ReviewRequest& r, ReviewStep held, const std::string& why, Error refusal) {
  ReviewStep s = Withdraw(r, std::move(held), why);
  s.verdict = ReviewVerdict::kRefuse;
  s.refusal = std::move(refusal);
  return s;
}

std::string ReviewOutcome(const ReviewStep& step) {
  if (step.verdict == ReviewVerdict::kForward) return "approved";
  if (step.approval.value("handed_off", false)) return "handed_off";
  if (step.verdict == ReviewVerdict::kWithdrawn) return "withdrawn";
  const std::string state = step.approval.value("state", std::string());
  for (const char* known : {"denied", "expired", "withdrawn", "abandoned"}) {
    if (state == known) return known;
  }
  return "refused";
}

ReviewStep ReviewStage::HandOff(const ReviewRequest& r, ReviewStep held) {
  const std::string id = held.approval_id;
  auto handed = approvals_.HandOff(id);
  if (!handed && handed.error().http_code == 409) return Resume(r, std::move(held));  // decided meanwhile
  ReviewStep s;
  s.verdict = ReviewVerdict::kRefuse;
  s.approval = handed ? ApprovalAuditFacts(*handed, nullptr, Waited(r)) : std::move(held.approval);
  s.approval["handed_off"] = true;
  Error e = Error::Unavailable("kubegate: this gateway replica is shutting down; request " + id +
                               " is still pending approval (rule \"" + r.rule->name +
                               "\"). Send it again: the gateway that receives it holds it under the same approval "
                               "request (kubectl resends most requests by itself after Retry-After; run an exec "
                               "or attach again if it stopped).");
  if (!handed) e.message += " (the store could not be updated: " + handed.error().message + ")";
  e.retry_after_seconds = static_cast<int>(limits::kHandOffRetryAfter.count());
  s.refusal = std::move(e);
  return s;  // `held`, and its hold, end here
}

std::optional<std::string> ReviewStage::SessionEnds(const std::string& grant_id, std::int64_t expires_ms) {
  if (clock_.NowMillis() >= expires_ms) return "session closed by kubegate: grant " + grant_id + " expired";
  auto g = approvals_.GetGrant(grant_id);
  if (g && *g && (*g)->revoked) {
    return "session closed by kubegate: grant " + grant_id + " was revoked by " + (*g)->revoked_by;
  }
  return std::nullopt;
}

}  // namespace kubegate
