// Approvals and grants: a request under review waits for people (or a
// policy) to approve it, within a scope, for a limited time.
//
//   ApprovalRequest  one request held (or answered at once) for review: who
//                    asked, what, under which rule (a snapshot of its review
//                    spec), the votes so far, and its state.
//   Grant            what an approval allows: the caller, a scope (verbs,
//                    resource, namespace, names, exec container and
//                    command), an expiry and optionally a number of uses.
//
// ApprovalService keeps both in the store and enforces every rule of
// deciding: only the rule's approvers, distinct people, no self-approval
// unless the rule allows it, nothing after expiry or a decision, races
// between approvers serialized by a write transaction.
//
//   ApprovalService svc(*ApprovalService::OpenDatabase(config), clock);
//   auto req = svc.Open(NewApproval{...});                  // or the pending twin
//   auto r = svc.Approve(req->id, approver, {.reason = "ok", .grant_ms = 15 * 60'000});
//   auto g = svc.UseGrant(who, info, rule_name);            // a live grant covering a request
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "classify/request_info.h"
#include "common/clock.h"
#include "common/result.h"
#include "identity/identity.h"
#include "policy/policy.h"
#include "store/database.h"
#include "store/store_events.h"

namespace kubegate {

enum class ApprovalState { kPending, kApproved, kDenied, kExpired, kWithdrawn, kAbandoned };
const char* ApprovalStateName(ApprovalState s);

struct Vote {
  std::string user;  // "policy:RULE/AUTO" for an automatic approval
  std::int64_t at_ms = 0;
  std::string reason;
};

// The request as the grant machinery compares it: what it names
// (RequestInfo) and the digest of its body ("" when it has none).
struct RequestedAction {
  const RequestInfo& info;
  std::string body_sha256;
};

// What a grant allows: exactly the approved request unless an approver
// widened it, and each widening is a named flag, shown in words.
//   verbs, api_group..namespace_  always compared
//   names                         empty only after "any-name" widening
//   container                     compared exactly: "" is the pod's default
//                                 container, never "any container"
//   command                       compared exactly unless any_command
//   query                         ActingQuery of the approved request:
//                                 selectors, exec's stdin/stdout/stderr/tty,
//                                 port-forward's ports, write options; all
//                                 compared, or only the selectors after
//                                 "reads" widening
//   body_sha256                   the approved body; writes only
struct GrantScope {
  std::vector<std::string> verbs;
  std::string api_group, resource, subresource, namespace_;
  std::vector<std::string> names;
  std::string container;
  std::vector<std::string> command;
  bool any_command = false;  // exec/attach: any command in the pod
  std::vector<std::pair<std::string, std::string>> query;
  bool selectors_only = false;  // "reads": only query's selectors compared
  std::string body_sha256;
  bool port_forward_any_port = false;  // port-forward with ports not in the URL (SPDY)

  nlohmann::json ToJson() const;
  static GrantScope FromJson(const nlohmann::json& j);
  // Exactly this request.
  static GrantScope Of(const RequestedAction& a);
  bool Covers(const RequestedAction& a) const;
  // In words: "get and list secrets in prod named db, label selector app=web".
  std::string Describe() const;
};

// The caller as authenticated: a grant is held by this identity, not by a
// user name that another credential could also carry.
struct Holder {
  std::string user;
  std::vector<std::string> groups;  // sorted
  std::string kind;                 // IdentityKindName
  std::string method;               // AuthMethodName
  // A per-task token's task and credential: a grant approved for it is
  // usable only under that token, so it ends when the token expires or is
  // revoked. Empty for other callers.
  std::string task;
  std::string credential;
  static Holder Of(const Identity& who);
  bool operator==(const Holder&) const = default;
  nlohmann::json ToJson() const;
  static Holder FromJson(const nlohmann::json& j);
};

struct Grant {
  std::string id;  // "gr-..."
  std::string user;
  Holder holder;
  std::string rule;
  std::string approval_id;
  GrantScope scope;
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  std::int64_t uses_left = -1;  // -1: unlimited until expiry
  bool revoked = false;
  std::string revoked_by;
};

struct ApprovalRequest {
  std::string id;  // the request id that first asked (kg-...)
  std::string requester;
  std::vector<std::string> requester_groups;
  std::string requester_kind;
  std::string requester_method;  // AuthMethodName
  std::string requester_task;        // per-task tokens: the task, shown to approvers
  std::string requester_credential;  // and the credential the grant binds to
  std::string rule;
  std::string message;   // the rule's message, shown to requester and approvers
  ReviewSpec review;     // snapshot at creation; reloads do not change it
  std::string fingerprint;
  nlohmann::json request = nlohmann::json::object();  // method, target, RequestInfo, kubectl command, body summary
  std::int64_t created_ms = 0;
  std::int64_t expires_ms = 0;
  ApprovalState state = ApprovalState::kPending;
  std::vector<Vote> votes;
  std::string decided_by;
  std::string reason;   // the denial's, or why it expired/was withdrawn
  std::int64_t decided_ms = 0;
  std::string grant_id;
  std::int64_t grant_ms = 0;
  GrantScope scope;     // what the grant covers (set when approved)
  // A server-side dry run of the request for its approvers (writes only):
  // {"summary", "status", "request_id" of its own audit record, "at_ms"}.
  nlohmann::json dry_run;
  std::string body_sha256;  // of the held request's body ("" without one)
  // How many requests asked for exactly this (the first and its twins),
  // less those handed off at a gateway's shutdown (HandOff; their retry
  // asks again); each one forwarded needs its own use of the grant.
  int asked = 1;

  nlohmann::json ToJson() const;
  static ApprovalRequest FromJson(const nlohmann::json& j);
};

struct NewApproval {
  std::string id;
  const Identity* who = nullptr;
  const RequestInfo* info = nullptr;
  const PolicyRule* rule = nullptr;
  nlohmann::json request = nlohmann::json::object();
  nlohmann::json dry_run;  // ApprovalRequest::dry_run, when one was run
  std::string body_sha256;  // Sha256Hex of the body, "" without one
};

struct ApproveOptions {
  std::string reason;
  std::int64_t grant_ms = 0;  // 0: the rule's defaultGrant
  bool any_command = false;   // widen: any command in this pod
  bool any_name = false;      // widen: any name in this namespace and resource
  bool reads = false;         // widen a read: get, list and watch, same selectors
};

// A recorded session whose gateway instance stopped (OrphanSessions).
struct OrphanSession {
  std::string request_id;
  std::string instance_id;
  std::string file;  // the recording's name in the recording directory
  std::string kind;  // exec, attach, portforward
  std::int64_t started_ms = 0;
};

class ApprovalService {
 public:
  // The approval tables, migrated (they live beside the audit log's).
  static Result<std::unique_ptr<Database>> OpenDatabase(const StoreConfig& config);
  static Result<std::unique_ptr<Database>> OpenDatabase(std::unique_ptr<SqlConnection> conn);

  ApprovalService(std::unique_ptr<Database> db, const Clock& clock);
  const Clock& clock() const { return clock_; }

  // Called with the id of every approval request whose state or votes
  // changed, and of every grant revoked, after the change is committed
  // (WakeUps::Notify wakes whoever waits on it).
  void SetChangeListener(std::function<void(const std::string& id)> listener) { changed_ = std::move(listener); }
  // Of `watched` (approval request and grant ids), those another process
  // may have changed behind this one's back: approval requests no longer
  // pending and grants revoked. Two queries, however many are watched.
  // Other keys are ignored.
  Result<std::vector<std::string>> ChangedAmong(const std::vector<std::string>& watched);

  // A pending request for the same caller and the same action (fingerprint)
  // is reused, so kubectl's retry (WebSocket, then SPDY with the same
  // Kubectl-Session) and re-runs before approval make one request.
  Result<ApprovalRequest> Open(const NewApproval& n);
  // An approval made by the policy itself (an auto-approver held).
  Result<ApprovalRequest> OpenApprovedByPolicy(const NewApproval& n, const std::string& approver_name);

  // 404 unknown id; 409 already decided or expired; 403 not an approver,
  // self-approval, or (approve) the same person twice.
  Result<ApprovalRequest> Approve(const std::string& id, const Identity& approver, const ApproveOptions& o);
  Result<ApprovalRequest> Deny(const std::string& id, const Identity& approver, const std::string& reason);
  // The held caller went away (withdrawn) or a previous process held it (abandoned).
  Result<ApprovalRequest> Close(const std::string& id, ApprovalState state, const std::string& reason);
  // Pending held approval requests in the whole store (every replica's):
  // the caller's own, and everyone's. For the hold quotas, which count
  // distinct requests across replicas as well as connections per process.
  struct PendingHolds {
    int of_requester = 0;
    int total = 0;
  };
  Result<PendingHolds> CountPendingHolds(const std::string& requester);
  // This gateway is shutting down and told the held caller to send the
  // request again: it stays pending, one asker fewer (the retry joins it
  // as a twin on whichever replica it reaches). This instance stays among
  // its holders, so AbandonOrphans ends it kReplicaDeadAfter after this
  // instance's last heartbeat unless a live replica holds it by then.
  Result<ApprovalRequest> HandOff(const std::string& id);
  Result<ApprovalRequest> Get(const std::string& id);
  // Pending ones past their wait limit become expired on the way.
  Result<std::vector<ApprovalRequest>> List(std::optional<ApprovalState> state);
  // At start, when this process is the store's only user (SQLite): every
  // pending held request belonged to a connection that is gone.
  Result<int> AbandonHeld();
  // Several replicas sharing the store (PostgreSQL): this instance is
  // alive (every kReplicaHeartbeat), and pending held requests none of
  // whose holding instances has been seen for `dead_after_ms` are
  // abandoned (their connections died with those replicas), each change
  // announced like any other. Requests held by live replicas are left.
  Result<bool> Heartbeat();
  Result<int> AbandonOrphans(std::int64_t dead_after_ms);
  // A recorded session (exec, attach, port-forward) is open on this
  // instance, its recording in `file` (a name in the shared recording
  // directory) since `started_ms`; and closed again, by this instance.
  Result<bool> SessionOpened(const std::string& request_id, const std::string& file, const std::string& kind,
                             std::int64_t started_ms);
  Result<bool> SessionClosed(const std::string& request_id);
  // The recorded sessions of other instances not seen for `dead_after_ms`
  // (their connections died with them; an instance beats at start and
  // every kReplicaHeartbeat, cli/main.cc and the gateway server). Whoever
  // claims one (true: exactly one caller) ends its recording and writes its
  // result record.
  Result<std::vector<OrphanSession>> OrphanSessions(std::int64_t dead_after_ms);
  Result<bool> ClaimOrphanSession(const OrphanSession& session);
  // The instance this service records as holder (default: this
  // process's StoreInstanceId()); tests act as several replicas.
  void SetInstance(std::string id) { instance_ = std::move(id); }
  const std::string& instance() const { return instance_; }

  // A live grant held by `who` (as authenticated) under `rule` covering the
  // action; one use is taken. None when every covering grant is used up.
  Result<std::optional<Grant>> UseGrant(const Identity& who, const RequestedAction& a, const std::string& rule);
  Result<std::optional<Grant>> GetGrant(const std::string& id);
  Result<std::vector<Grant>> ListGrants(bool live_only);
  // 403 unless `by` is the grant's holder or an approver of its rule.
  Result<Grant> Revoke(const std::string& grant_id, const Identity& by, const std::string& reason);

  // Whether `who` is named among the approvers of `review` (by user or group).
  static bool ListedApprover(const ReviewSpec& review, const Identity& who);
  // Whether `who` may decide `req` (approver list; self-approval rules).
  static std::optional<Error> CheckApprover(const ApprovalRequest& req, const Identity& who);
  // Requests with the same fingerprint join one pending approval: same
  // identity as authenticated, rule, RequestInfo, acting query and body.
  static std::string Fingerprint(const Identity& who, const RequestedAction& a, const std::string& rule);

 private:
  Result<bool> AddHolder(const std::string& id);  // inside Open's transaction
  Result<ApprovalRequest> Mutate(const std::string& id,
                                 const std::function<std::optional<Error>(ApprovalRequest&)>& change);
  Result<bool> Put(const ApprovalRequest& r, bool insert);
  Result<bool> PutGrant(const Grant& g, bool insert);
  Result<std::optional<ApprovalRequest>> Load(const std::string& id, bool for_update);
  Grant MakeGrant(ApprovalRequest& r, std::int64_t now);
  static ApprovalRequest NewRequest(const NewApproval& n, std::int64_t now);

  // After a commit: this process's waiters are told directly, other
  // replicas through the store (kWakeChannel; a lost one is caught by
  // their sweep).
  void Changed(const std::string& id) const {
    (void)db_->Publish(kWakeChannel, id);
    if (changed_) changed_(id);
  }

  std::unique_ptr<Database> db_;
  const Clock& clock_;
  std::function<void(const std::string&)> changed_;
  std::string instance_ = StoreInstanceId();
};

}  // namespace kubegate

namespace kubegate {

// The approval facts an audit record carries: the request's id and state,
// the rule, who approved (when, why), the scope, the grant used and its
// expiry, how long the caller waited, whether an automatic approver decided.
// The action forwarded is always inside the scope (kubegate forwards nothing
// else), so within_scope is recorded as true.
nlohmann::json ApprovalAuditFacts(const ApprovalRequest& r, const Grant* grant, std::int64_t waited_ms);

}  // namespace kubegate
