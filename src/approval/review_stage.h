// ReviewStage: what happens to a request a review rule matched. Plain
// calls, each run by the network layer on the store thread, in this order:
//
//   ReviewStep s = stage.Start(r);          // a policy approver, a live grant, or ask
//   if (s.verdict == ReviewVerdict::kDryRunFirst) {
//     ... run the approvers' dry run (approval/dry_run_request.h) ...
//     s = stage.Ask(r, note);               // open (or join) the approval request
//   }
//   while (s.verdict == ReviewVerdict::kHold) {
//     ... wait for WakeUps on s.approval_id, or until s.hold_until_ms,
//         while watching the caller's connection ...
//     s = caller_gone ? stage.Withdraw(r, std::move(s), why)
//       : token_ended ? stage.Cancel(r, std::move(s), why, refusal) : stage.Resume(r, std::move(s));
//   }
//   // kForward: forward (under s.grant_id when set); kRefuse: answer
//   // s.refusal; kWithdrawn: nothing to answer, the caller is gone.
//
// Every step carries the approval facts its audit record keeps. A held
// step owns a HoldQuota ticket: the hold ends when the step holding it does.
// Time comes from the Clock given, so hold and grant expiry are tested with
// ManualClock.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "approval/approval.h"
#include "approval/approval_events.h"
#include "approval/hold_quota.h"
#include "classify/request_info.h"
#include "common/clock.h"
#include "common/result.h"
#include "identity/identity.h"
#include "policy/policy.h"

namespace kubegate {

// The request under review, as the stage needs it. Pointers are borrowed
// for the duration of each call.
struct ReviewRequest {
  const Identity* who = nullptr;
  const RequestInfo* info = nullptr;
  const PolicyRule* rule = nullptr;             // the review rule that matched
  const AutoApprover* auto_approver = nullptr;  // one of its automatic approvers that holds
  // The approvers may see a server-side dry run of it first (a write the
  // API server honours dryRun for, sent as the caller).
  bool dry_run_possible = false;
  std::string request_id;
  std::string method, target, kubectl_command;
  const std::string* body = nullptr;  // the held body, if it has one
  std::string content_type;
  std::int64_t started_ms = 0;  // when the stage began (for "waited")
};

enum class ReviewVerdict {
  kForward,      // forward it (under grant_id when set)
  kRefuse,       // answer `refusal`
  kDryRunFirst,  // run the approvers' dry run, then Ask
  kHold,         // wait for approval_id to change, or until hold_until_ms
  kWithdrawn,    // the caller left while held: nothing to answer
};

struct ReviewStep {
  ReviewVerdict verdict = ReviewVerdict::kRefuse;
  Error refusal;  // kRefuse
  nlohmann::json approval = nlohmann::json::object();  // ApprovalAuditFacts, for the audit record
  std::string approval_id;         // kHold
  std::int64_t hold_until_ms = 0;  // kHold: Resume then at the latest
  std::shared_ptr<HoldQuota::Ticket> hold;  // kHold
  std::string grant_id;            // kForward under a grant
  std::int64_t grant_expires_ms = 0;  // an exec/attach/port-forward stream ends then
};

// How a review ended, in one of a few fixed words (the label of
// kubegate_review_outcomes_total): approved (forwarded), denied, expired,
// withdrawn, abandoned, handed_off, or refused (ask-only rules, quotas, the
// store down).
std::string ReviewOutcome(const ReviewStep& step);

class ReviewStage {
 public:
  // `events` may be null (no notifications).
  ReviewStage(ApprovalService& approvals, HoldQuota& quota, ApprovalEvents* events, const Clock& clock)
      : approvals_(approvals), quota_(quota), events_(events), clock_(clock) {}

  // kForward (policy approver, live grant), kRefuse (bad request, store
  // down), kDryRunFirst, or what Ask answers.
  ReviewStep Start(const ReviewRequest& r);
  // Opens the approval request (or joins the caller's pending twin) with
  // the dry run's note (null when none ran): kRefuse for an ask-only rule
  // (with instructions) or over the hold quota, else kHold.
  ReviewStep Ask(const ReviewRequest& r, const nlohmann::json& dry_run);
  // After a wake-up or at hold_until_ms: kHold while still pending, else
  // kForward (approved, and a use of its grant is left) or kRefuse.
  ReviewStep Resume(const ReviewRequest& r, ReviewStep held);
  // The caller went away while held: the approval request is withdrawn and
  // can never run later.
  ReviewStep Withdraw(const ReviewRequest& r, ReviewStep held, const std::string& why);
  // The caller's own credential ended while held (its per-task token was
  // revoked or expired): the approval request is withdrawn the same way,
  // and the caller is answered kRefuse with `refusal`.
  ReviewStep Cancel(const ReviewRequest& r, ReviewStep held, const std::string& why, Error refusal);

  // This gateway is shutting down (SIGTERM): the caller is answered 503
  // with Retry-After and the approval request stays pending for the retry,
  // which joins it on whichever replica it reaches (ApprovalService::
  // HandOff). When it was decided meanwhile, the decision is answered
  // instead (Resume): nothing approved is dropped, nothing denied retried.
  ReviewStep HandOff(const ReviewRequest& r, ReviewStep held);

  // For a stream forwarded under a grant, after a wake-up on the grant or
  // at its expiry: why the stream must end now, or nothing.
  std::optional<std::string> SessionEnds(const std::string& grant_id, std::int64_t expires_ms);

  // The store cannot be read for this long past a hold's limit: refused.
  static constexpr std::int64_t kStoreGraceMs = 5000;

 private:
  ReviewStep Refuse(Error e, nlohmann::json approval = nlohmann::json::object()) const;
  ReviewStep StoreDown(const Error& e) const;
  std::int64_t Waited(const ReviewRequest& r) const { return clock_.NowMillis() - r.started_ms; }
  NewApproval MakeNew(const ReviewRequest& r) const;
  ReviewStep UseGrantOf(const ReviewRequest& r, const ApprovalRequest& decided);

  ApprovalService& approvals_;
  HoldQuota& quota_;
  ApprovalEvents* events_;
  const Clock& clock_;
};

}  // namespace kubegate
