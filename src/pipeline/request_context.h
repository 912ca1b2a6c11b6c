// RequestContext: everything kubegate knows about one request, filled in
// by the stages in order and held by value by the session that runs it
// (net/session.cc declares the order). A stage returns StageResult:
// nothing to go on, or a Respond saying how the request ends; the one exit,
// Session::Finish, then replies, audits, logs and counts for every request
// alike, so no path can answer without its audit record.
//
//   RequestContext ctx = ...;                       // from the head
//   StageResult r = Authenticate(ctx);              // ctx.who set, or
//   if (r) return Finish(ctx, *r);                  //   Respond::Refuse(401 ...)
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "classify/request_info.h"
#include "common/result.h"
#include "identity/identity.h"
#include "pipeline/admission.h"
#include "recording/recording_plan.h"

namespace kubegate {

// What the caller was sent (or, for a withdrawn request, what is recorded).
struct Outcome {
  int status = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool keep_alive = false;
  std::string closed_reason;  // a stream kubegate ended early, and why
  std::optional<nlohmann::json> recording;  // a session's recording summary
};

// Which refusal counter a refusal moves (kubegate_rejected_*_total and
// friends); kNone for refusals counted elsewhere.
enum class Refusal {
  kNone,
  kBadRequest,       // 400, 405, 413, 431
  kUnauthenticated,  // 401
  kForbidden,        // 403 by a rule
  kUpstream,         // 502/503: the API server could not be used
  kRecording,        // 503: a required recording cannot start
  kAuditFailClosed,  // 503: the decision record was not committed
  kReview,           // a review ended without forwarding (the hold stage counts it)
};

// How a request ends.
struct Respond {
  enum class Kind {
    kRefuse,     // kubegate answers `error` as a Status
    kAnswered,   // already answered (forwarded and relayed, or an API reply)
    kWithdrawn,  // the caller left while held: nothing to answer
  };
  Kind kind = Kind::kRefuse;
  Error error;              // kRefuse: the Status; kAnswered: the record's error, if any
  Refusal counter = Refusal::kNone;
  // kRefuse: the rule the record names as deciding ("bad-request",
  // "authentication", ...); empty: the decision already made stands (a
  // review that was denied or expired).
  std::string rule;
  bool keep_alive = false;  // kRefuse: the connection may stay open
  Outcome outcome;          // kAnswered

  static Respond Refuse(Error e, Refusal counter, std::string rule, bool keep_alive) {
    Respond r;
    r.kind = Kind::kRefuse;
    r.error = std::move(e);
    r.counter = counter;
    r.rule = std::move(rule);
    r.keep_alive = keep_alive;
    return r;
  }
  static Respond Answered(Outcome o, std::string error_for_record = "") {
    Respond r;
    r.kind = Kind::kAnswered;
    r.outcome = std::move(o);
    r.error.message = std::move(error_for_record);
    return r;
  }
  static Respond Withdrawn(std::string why) {
    Respond r;
    r.kind = Kind::kWithdrawn;
    r.error.message = std::move(why);
    r.outcome.status = 499;  // client closed request (nginx's code); nothing was sent
    return r;
  }
};

// nullopt: continue with the next stage; else how the request ends. One
// pointer wide, as std::optional<Respond> (232 bytes) was not: a coroutine
// frame keeps a slot for the result of every stage it awaits (GCC 12 does
// not share them) for as long as the request lives, held ones included;
// only a request that ends early pays for the allocation.
class StageResult {
 public:
  StageResult() = default;
  StageResult(std::nullopt_t) {}  // NOLINT: implicit, as std::optional's
  StageResult(Respond r) : r_(std::make_unique<Respond>(std::move(r))) {}  // NOLINT: implicit
  explicit operator bool() const { return r_ != nullptr; }
  bool has_value() const { return r_ != nullptr; }
  Respond& operator*() { return *r_; }
  const Respond& operator*() const { return *r_; }
  Respond* operator->() { return r_.get(); }
  const Respond* operator->() const { return r_.get(); }

 private:
  std::unique_ptr<Respond> r_;
};

struct RequestContext {
  // From the head, before any stage.
  std::string request_id;
  std::int64_t received_ms = 0;
  std::chrono::steady_clock::time_point started;
  std::string source;  // peer address
  std::string method, target;
  std::string user_agent, kubectl_command, kubectl_session, content_type;
  bool keep_alive = false;

  // authenticate
  std::optional<Identity> who;
  std::string auth_failure;  // refused at authentication: why, as counted (never the credential)
  // classify (for a refusal before it: what the target reads as, if anything)
  std::optional<RequestInfo> info;
  // read body: the whole body, when a stage needed it (bounded)
  std::optional<std::string> body;
  std::optional<nlohmann::json> recorded_body;  // redacted, for the record
  // decide
  std::optional<Decision> decision;
  nlohmann::json namespace_labels;  // what a namespaceSelector rule saw
  // What the record says decided: allow, deny or review; the rule; the
  // message shown on denial.
  std::string action, rule, message;
  // hold
  nlohmann::json approval = nlohmann::json::object();
  // kubegate's own API changed an identity or credential: what, for the record.
  nlohmann::json identity_change;
  std::string grant_id;  // a stream forwarded under a grant ends with it
  std::int64_t grant_expires_ms = 0;
  // recording: the plan, and its file, created before anything is
  // forwarded (the recorder takes it at the 101)
  std::optional<RecordingPlan> recording;
  std::unique_ptr<RecordingSink> recording_file;
  // audit: the identity sent upstream (header name -> value, repeated
  // headers joined by commas), computed once
  std::vector<std::pair<std::string, std::string>> upstream_identity;
  enum class Audit { kNotYet, kCommitted, kRefused } audit = Audit::kNotYet;

  bool reviewed() const { return decision && decision->action == Decision::Action::kReview; }
};

}  // namespace kubegate
