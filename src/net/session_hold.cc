// The hold stage's transport side: the review stage (approval/review_stage.h)
// decides; this file runs its steps on the store thread, sends the
// approvers' dry run, and waits for wake-ups while watching the caller.
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/string_body.hpp>

#include "approval/approval_api.h"
#include "approval/dry_run_request.h"
#include "audit/audit_record.h"
#include "forward/header_rewrite.h"
#include "net/await.h"
#include "net/session.h"
#include "net/wake_up_waiter.h"
#include "credentials/credential_store.h"
#include "common/limits.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;


awaitable<StageResult> Session::Hold(RequestContext& ctx, Head& head) {
  if (!ctx.reviewed()) co_return std::nullopt;
  g_.metrics.reviews.Increment();
  ReviewStage* stage = g_.review;
  const Decision& decision = *ctx.decision;
  if (!stage || !decision.policy_rule) {
    g_.metrics.review_refused.Increment();
    co_return Respond::Refuse(Error::Unavailable("kubegate cannot hold requests for review without its store"),
                              Refusal::kReview, "", ctx.keep_alive && head.is_done());
  }
  // A held request is forwarded exactly as received: its body is read first.
  if (!ctx.body && !head.is_done()) {
    if (auto refused = co_await ReadBody(ctx, head, g_.max_body())) co_return refused;
  }
  ReviewRequest r;
  r.who = &*ctx.who;
  r.info = &*ctx.info;
  r.rule = decision.policy_rule;
  r.auto_approver = decision.auto_approver;
  r.dry_run_possible = IsWrite(*ctx.info) && !decision.pass_caller_impersonation;
  r.request_id = ctx.request_id;
  r.method = ctx.method;
  r.target = ctx.target;
  r.kubectl_command = ctx.kubectl_command;
  r.body = ctx.body ? &*ctx.body : nullptr;
  r.content_type = ctx.content_type;
  r.started_ms = g_.clock.NowMillis();

  auto start = [stage, &r] { return stage->Start(r); };
  ReviewStep step = co_await OnStoreThread<ReviewStep>(g_.store_thread, start);
  if (step.verdict == ReviewVerdict::kDryRunFirst) {
    // Approvers see what the API server says of a write before deciding.
    nlohmann::json note = co_await DryRunForApprovers(ctx, head);
    auto ask = [stage, &r, &note] { return stage->Ask(r, note); };
    step = co_await OnStoreThread<ReviewStep>(g_.store_thread, ask);
  }
  std::optional<WakeUpWaiter> waiter;
  if (step.verdict == ReviewVerdict::kHold) {
    // Listening first, then looking once more: a decision made between the
    // ask and the subscription is not missed. The same waiter watches the
    // caller's connection and identity: one frame waits, not one per source
    // (memory per held request, docs/performance.md).
    waiter.emplace(co_await asio::this_coro::executor);
    const std::vector<std::string> keys = {step.approval_id, std::string(kGatewayStoppingKey)};
    waiter->WakeOn(g_.wake_ups, keys, Woken::kKey);
    if (CanEnd(ctx)) waiter->WakeOn(g_.wake_ups, CredentialCache::WakeKeys(*ctx.who), Woken::kIdentity);
    waiter->WatchReadable(stream_);
    auto resume = [stage, &r, &step] { return stage->Resume(r, std::move(step)); };
    step = co_await OnStoreThread<ReviewStep>(g_.store_thread, resume);
  }
  while (step.verdict == ReviewVerdict::kHold) {
    // The gateway is shutting down (checked after subscribing, so a
    // shutdown that begins later wakes the wait below): the caller is told
    // to send it again, and another replica holds it.
    if (g_.stopping) {
      auto hand_off = [stage, &r, &step] { return stage->HandOff(r, std::move(step)); };
      step = co_await OnStoreThread<ReviewStep>(g_.store_thread, hand_off);
      continue;
    }
    // Woken by the decision (or a vote), or at the hold's limit; the caller
    // leaving (or overrunning the read-ahead bound) withdraws the request,
    // which can then never run later.
    std::string gone;
    std::optional<CallerEnd> end = co_await AwaitCaller(ctx, *waiter, CanEnd(ctx), step.hold_until_ms, gone);
    if (end == CallerEnd::kIdentityEnded) {
      // The caller is still there: told why nothing was done.
      Error refusal = Error::Unauthorized("kubegate: " + gone + " while request " + ctx.request_id +
                                          " was held for approval; it was withdrawn and nothing was done");
      auto cancel = [stage, &r, &step, &gone, &refusal] {
        return stage->Cancel(r, std::move(step), gone, std::move(refusal));
      };
      step = co_await OnStoreThread<ReviewStep>(g_.store_thread, cancel);
      break;
    }
    if (end == CallerEnd::kLeft) {
      auto withdraw = [stage, &r, &step, &gone] { return stage->Withdraw(r, std::move(step), gone); };
      step = co_await OnStoreThread<ReviewStep>(g_.store_thread, withdraw);
      break;
    }
    auto resume = [stage, &r, &step] { return stage->Resume(r, std::move(step)); };
    step = co_await OnStoreThread<ReviewStep>(g_.store_thread, resume);
  }
  waiter.reset();
  if (step.verdict == ReviewVerdict::kForward) {
    // An approval covers the credential the approver saw: a token revoked
    // (or expired), or a user disabled, while held, even in the instant
    // before the approval came, forwards nothing.
    if (auto ended = co_await IdentityEnded(ctx)) {
      step.verdict = ReviewVerdict::kRefuse;
      step.refusal = Error::Unauthorized("kubegate: " + *ended + " before request " + ctx.request_id +
                                         " was released; it was approved but nothing was done");
    }
  }
  ctx.approval = step.approval;
  if (step.verdict == ReviewVerdict::kForward) {
    g_.metrics.approved_forwarded.Increment();
  } else {
    g_.metrics.review_refused.Increment();
  }
  g_.metrics.CountReviewOutcome(ReviewOutcome(step), static_cast<double>(g_.clock.NowMillis() - r.started_ms) / 1000.0);
  switch (step.verdict) {
    case ReviewVerdict::kForward:
      ctx.grant_id = step.grant_id;
      ctx.grant_expires_ms = step.grant_expires_ms;
      co_return std::nullopt;
    case ReviewVerdict::kWithdrawn:
      co_return Respond::Withdrawn(step.approval.value("reason", std::string("the caller left")));
    default:
      co_return Respond::Refuse(step.refusal, Refusal::kReview, "", ctx.keep_alive);
  }
}

awaitable<void> Session::WatchGrant(std::string grant_id, std::int64_t expires_ms, std::string& reason) {
  ReviewStage* stage = g_.review;
  const std::vector<std::string> keys = {grant_id};
  WakeUpWaiter waiter(g_.wake_ups, keys, co_await asio::this_coro::executor);
  while (true) {
    // Listening first, then looking: no revocation falls in between.
    auto check = [stage, &grant_id, expires_ms] { return stage->SessionEnds(grant_id, expires_ms); };
    auto ends = co_await OnStoreThread<std::optional<std::string>>(g_.store_thread, check);
    if (ends) {
      reason = *ends;
      co_return;
    }
    (void)co_await waiter.Wait(g_.clock, expires_ms);
  }
}

awaitable<void> Session::WatchIdentity(const Identity& who, std::string& reason) {
  const CredentialCache& cache = *g_.credential_cache;
  WakeUpWaiter waiter(g_.wake_ups, CredentialCache::WakeKeys(who), co_await asio::this_coro::executor);
  while (true) {
    // Listening first, then looking: no change falls in between.
    if (auto ended = cache.Ended(who, g_.clock.NowMillis())) {
      reason = std::move(*ended);
      co_return;
    }
    // Woken by a change to this user or credential, or at the
    // credential's expiry; a day at most between looks otherwise.
    const std::int64_t now = g_.clock.NowMillis();
    std::int64_t until = now + 86'400'000;
    if (who.credential_expires_ms) until = std::min(until, who.credential_expires_ms);
    (void)co_await waiter.Wait(g_.clock, until);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return;
  }
}

bool Session::CanEnd(const RequestContext& ctx) const { return ctx.who && g_.credential_cache; }

awaitable<Session::CallerEnd> Session::WatchCaller(const RequestContext& ctx, std::string& why, bool identity_too) {
  const bool identity = identity_too && CanEnd(ctx);
  WakeUpWaiter waiter(co_await asio::this_coro::executor);
  if (identity) waiter.WakeOn(g_.wake_ups, CredentialCache::WakeKeys(*ctx.who), Woken::kIdentity);
  waiter.WatchReadable(stream_);
  while (true) {
    // Nothing else wakes it: a day at most between looks.
    auto end = co_await AwaitCaller(ctx, waiter, identity, g_.clock.NowMillis() + 86'400'000, why);
    if (end) co_return *end;
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return CallerEnd::kLeft;  // the other side ended first
  }
}

awaitable<std::optional<Session::CallerEnd>> Session::AwaitCaller(const RequestContext& ctx, WakeUpWaiter& waiter,
                                                                  bool identity, std::int64_t deadline_ms,
                                                                  std::string& why) {
  stream_.expires_never();
  // Nothing buffered: the read buffer goes while the caller waits (ReadAhead
  // takes one again if bytes come).
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  while (true) {
    // Looking after each wake-up on the identity's keys (and at the
    // credential's expiry): no change falls in between.
    if (identity) {
      if (auto ended = g_.credential_cache->Ended(*ctx.who, g_.clock.NowMillis())) {
        why = std::move(*ended);
        co_return CallerEnd::kIdentityEnded;
      }
    }
    // Bytes that come meanwhile stay for the next request, within a fixed
    // bound: more is a protocol error (kubectl never pipelines).
    if (buffer_.size() >= limits::kMaxBytesReadAhead) {
      why = "the caller sent more than " + std::to_string(limits::kMaxBytesReadAhead / 1024) +
            " KiB while waiting for an answer";
      co_return CallerEnd::kLeft;
    }
    std::int64_t until = deadline_ms;
    if (identity && ctx.who->credential_expires_ms) until = std::min(until, ctx.who->credential_expires_ms);
    const Woken woken = co_await waiter.Wait(g_.clock, until);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return std::nullopt;
    switch (woken) {
      case Woken::kReadable:
        if (!ReadAhead(why)) co_return CallerEnd::kLeft;
        break;
      case Woken::kIdentity:
        break;  // looked at above
      case Woken::kKey:
        co_return std::nullopt;
      case Woken::kDeadline:
        if (g_.clock.NowMillis() >= deadline_ms) co_return std::nullopt;
        break;  // the credential's expiry: looked at above
    }
  }
}

bool Session::ReadAhead(std::string& why) {
  beast::error_code ec;
  const std::size_t room = std::min<std::size_t>(4096, limits::kMaxBytesReadAhead - buffer_.size());
  buffer_.commit(stream_.ReadNow(buffer_.prepare(room), ec));
  if (!ec) return true;
  why = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
            ? "the caller closed its connection"
            : "the caller's connection broke (" + ec.message() + ")";
  return false;
}

awaitable<std::optional<std::string>> Session::IdentityEnded(const RequestContext& ctx) {
  if (!CanEnd(ctx)) co_return std::nullopt;
  if (!g_.credentials) co_return g_.credential_cache->Ended(*ctx.who, g_.clock.NowMillis());
  CredentialStore* store = g_.credentials;
  const Identity& who = *ctx.who;
  auto read = [store, &who] { return store->Ended(who); };
  auto ended = co_await OnStoreThread<Result<std::optional<std::string>>>(g_.store_thread, read);
  if (!ended) co_return "the caller's credentials could not be checked (" + ended.error().message + ")";
  co_return std::move(*ended);
}

awaitable<nlohmann::json> Session::DryRunForApprovers(const RequestContext& held, const Head& head) {
  nlohmann::json note = {{"at_ms", g_.clock.NowMillis()}};
  auto not_run = [&](const std::string& why) {
    note["summary"] = "not run: " + why;
    return note;
  };
  if (held.target.empty() || held.target[0] != '/') co_return not_run("the request target is not a path");
  // Built so the API server reads it as a dry run (a DELETE carries dryRun
  // in its DeleteOptions body), and read back before it may be sent.
  OwnRequest asked{held.method, held.target, held.content_type, held.body.value_or("")};
  auto built = BuildApproversDryRun(asked);
  if (!built) co_return not_run(built.error().message);
  // The dry run is a request of its own, with its own audit records.
  RequestContext dr;
  dr.request_id = NewRequestId();
  dr.received_ms = g_.clock.NowMillis();
  dr.started = std::chrono::steady_clock::now();
  dr.source = "kubegate";
  dr.method = built->request.method;
  dr.target = built->request.target;
  dr.user_agent = "kubegate (server-side dry run for approvers)";
  dr.kubectl_command = held.kubectl_command;
  dr.who = held.who;
  dr.info = built->info;
  dr.action = "allow";
  dr.rule = "approval-dry-run";
  dr.message = "server-side dry run of held request " + held.request_id + " for its approvers";
  dr.approval = {{"id", held.request_id}, {"purpose", "dry-run"}};
  // The DeleteOptions kubegate wrote are part of what was sent (they carry
  // the dry run); other bodies are the caller's and follow the rule's audit.
  if (NeedsBodyToClassify(built->info)) {
    dr.recorded_body = RedactRequestBody(built->info.resource, built->request.content_type, built->request.body);
  }
  dr.upstream_identity = ImpersonationHeaders(*held.who, dr.request_id, g_.config.upstream.impersonate);
  if (auto refused = co_await CommitDecision(dr)) {
    co_return not_run("its audit record could not be written (" + refused->error.message + ")");
  }
  note["request_id"] = dr.request_id;
  http::request<http::string_body> req(head.get().method(), dr.target, 11);
  if (!built->request.content_type.empty()) req.set(http::field::content_type, built->request.content_type);
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, dr.user_agent);
  for (auto& [n, v] : dr.upstream_identity) req.insert(n, v);
  req.body() = built->request.body;
  auto res = co_await OwnUpstreamRequest(pool_, g_.upstream_token.Current(), req);
  Outcome o;
  o.bytes_in = req.body().size();
  if (res) {
    o.status = static_cast<int>(res->result_int());
    o.bytes_out = res->body().size();
  } else {
    o.status = res.error().http_code;
  }
  g_.audit.RecordResult(dr, o, res ? "" : res.error().message);
  if (!res) co_return not_run(res.error().message);
  note["status"] = o.status;
  note["summary"] = DescribeDryRunAnswer(o.status, res->body());
  co_return note;
}

}  // namespace kubegate
