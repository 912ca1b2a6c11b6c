// The stages from framing to the committed decision. Each reads what it
// needs off the wire and hands the deciding to a plain module.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include "audit/audit_record.h"
#include "common/limits.h"
#include "forward/header_rewrite.h"
#include "identity/oidc.h"
#include "identity/service_account_auth.h"
#include "net/await.h"
#include "net/http_framing.h"
#include "net/io_helpers.h"
#include "net/session.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using io::IsUpgradeRequest;
using io::Redirect;


StageResult Session::CheckFraming(RequestContext& ctx, const Head& head) {
  if (auto framing = ::kubegate::CheckFraming(head.get())) {
    return Respond::Refuse(*framing, Refusal::kBadRequest, "bad-request", false);
  }
  if (head.content_length() && *head.content_length() > g_.max_body()) {
    return Respond::Refuse(Error::TooLarge("request body of " + std::to_string(*head.content_length()) +
                                           " bytes exceeds kubegate's limit of " + std::to_string(g_.max_body())),
                           Refusal::kBadRequest, "body-too-large", false);
  }
  return std::nullopt;
}

awaitable<StageResult> Session::Authenticate(RequestContext& ctx, const Head& head) {
  Credentials creds;
  const auto& req = head.get();
  if (auto it = req.find(http::field::authorization); it != req.end()) creds.authorization = it->value();
  creds.peer = peer_cert_;
  creds.untrusted_peer = untrusted_peer_;
  AuthNote note;
  auto who = g_.admission.Authenticate(creds, &note);
  if (!who && note.refresh_first && g_.oidc) {
    // An ID token signed with a key kubegate has not seen: the issuer may
    // have rotated its keys. One refresh (rate-limited per issuer), then
    // one more try that does not ask again.
    OidcIssuer* issuer = note.refresh_first;
    (void)co_await AwaitResume<bool>([&](std::function<void(bool)> resume) {
      if (!g_.oidc->RefreshThen(*issuer, [resume] { resume(true); })) resume(false);
    });
    note = {};
    who = g_.admission.Authenticate(creds, &note, /*allow_refresh=*/false);
  }
  if (!who && !note.token_to_review.empty() && g_.service_accounts) {
    who = co_await ReviewServiceAccountToken(note.token_to_review, note.reason);
    if (who) who = g_.admission.Admit(std::move(*who), &note);
  }
  if (!who) {
    g_.metrics.CountAuthenticationFailure(note.reason);
    ctx.auth_failure = note.reason;
    co_return Respond::Refuse(who.error(), Refusal::kUnauthenticated, "authentication", false);
  }
  ctx.who = std::move(*who);
  co_return std::nullopt;
}

StageResult Session::Classify(RequestContext& ctx) {
  auto info = g_.admission.Classify(ctx.method, ctx.target);
  if (!info) return Respond::Refuse(info.error(), Refusal::kBadRequest, "bad-request", false);
  ctx.info = std::move(*info);
  return std::nullopt;
}

awaitable<StageResult> Session::ReadBody(RequestContext& ctx, Head& head, std::size_t limit) {
  http::request_parser<http::string_body> body_parser(std::move(head));
  body_parser.body_limit(limit);
  stream_.expires_after(limits::kBodyIdleTimeout);
  beast::error_code ec;
  co_await http::async_read(stream_, buffer_, body_parser, Redirect(ec));
  stream_.expires_never();
  // The head goes back to `head` for forwarding (the parser is done).
  http::request<http::empty_body> moved_head(std::move(body_parser.get().base()));
  head.get() = std::move(moved_head);
  if (ec) co_return Respond::Refuse(ParseErrorToStatus(ec), Refusal::kBadRequest, "bad-request", false);
  ctx.body = std::move(body_parser.get().body());
  co_return std::nullopt;
}

// DELETE carries dry-run in its body: read it (bounded) before deciding.
// With audit.request_bodies, the bodies of writes are read too, to be
// recorded with the decision.
awaitable<StageResult> Session::ReadBodyToDecide(RequestContext& ctx, Head& head) {
  const RequestInfo& info = *ctx.info;
  const bool record_body = g_.config.audit.request_bodies && IsWrite(info);
  if (!(NeedsBodyToClassify(info) || record_body) || head.is_done()) co_return std::nullopt;
  if (auto refused = co_await ReadBody(ctx, head, record_body ? g_.max_body() : limits::kMaxInspectedBodyBytes)) {
    co_return refused;
  }
  if (NeedsBodyToClassify(info)) ApplyDeleteBody(*ctx.info, ctx.content_type, *ctx.body);
  if (record_body) ctx.recorded_body = RedactRequestBody(info.resource, ctx.content_type, *ctx.body);
  co_return std::nullopt;
}

awaitable<StageResult> Session::Decide(RequestContext& ctx, Head& head) {
  const auto& req = head.get();
  const Identity& who = *ctx.who;
  const RequestInfo& info = *ctx.info;
  bool asks_impersonation = false;
  for (const auto& f : req) asks_impersonation = asks_impersonation || IsImpersonationHeader(f.name_string());
  auto header = [&req](std::string_view name) -> std::optional<std::string> {
    auto it = req.find(name);
    if (it == req.end()) return std::nullopt;
    return std::string(it->value());
  };
  std::shared_ptr<const Policy> policy = g_.admission.policy().Current();
  std::optional<NamespaceLabels> namespace_labels;
  if (g_.admission.NeedsNamespaceLabels(*policy, who, info, asks_impersonation)) {
    auto labels = co_await NamespaceLabelsOf(info.namespace_);
    // The decision depends on labels kubegate cannot read: fail closed.
    if (!labels) co_return Respond::Refuse(labels.error(), Refusal::kUpstream, "namespace-labels", false);
    namespace_labels = std::move(*labels);
    ctx.namespace_labels = *namespace_labels;  // what the rule saw, for the record
  }
  ctx.decision = g_.admission.Decide(who, info, asks_impersonation, header, g_.clock.NowMillis(), policy,
                                     namespace_labels ? &*namespace_labels : nullptr);
  const Decision& decision = *ctx.decision;
  if (decision.action == Decision::Action::kDeny) {
    co_return Respond::Refuse(Error::Forbidden(decision.message), Refusal::kForbidden, decision.rule,
                              ctx.keep_alive && (ctx.body || head.is_done()));
  }
  // A rule may ask for the bodies of the writes it matches to be recorded.
  if (IsWrite(info) && !ctx.recorded_body && decision.policy_rule && decision.policy_rule->audit_request_bodies) {
    if (!ctx.body && !head.is_done()) {
      if (auto refused = co_await ReadBody(ctx, head, g_.max_body())) co_return refused;
    }
    if (ctx.body) ctx.recorded_body = RedactRequestBody(info.resource, ctx.content_type, *ctx.body);
  }
  ctx.action = decision.action == Decision::Action::kReview ? "review" : "allow";
  ctx.rule = decision.rule;
  if (decision.action == Decision::Action::kReview) ctx.message = decision.message;
  // The identity the API server will see, computed once: the caller's own
  // --as where the config allows it (kubegate's request id still travels as
  // an extra, so the cluster's audit links back), else kubegate's
  // impersonation of the caller.
  if (decision.pass_caller_impersonation) {
    for (const auto& f : req) {
      std::string name(f.name_string());
      if (IsImpersonationHeader(name) && !IsRequestIdExtraHeader(name)) {
        ctx.upstream_identity.emplace_back(name, std::string(f.value()));
      }
    }
    ctx.upstream_identity.emplace_back(std::string(kRequestIdExtraHeader), ctx.request_id);
  } else {
    ctx.upstream_identity = ImpersonationHeaders(who, ctx.request_id, g_.config.upstream.impersonate);
  }
  co_return std::nullopt;
}

// Exec, attach and port-forward sessions are recorded from the relay's copy
// of their bytes; the file exists before anything is forwarded, so a rule
// that requires recording can refuse in time.
StageResult Session::PlanRecording(RequestContext& ctx, const Head& head) {
  const RequestInfo& info = *ctx.info;
  if (info.stream == StreamKind::kNone || !IsUpgradeRequest(head.get())) return std::nullopt;
  const PolicyRule* rule = ctx.decision->policy_rule;
  RecordedSession session{ctx.request_id, ctx.who->user, &info, ctx.approval.value("id", ""), ctx.grant_id};
  auto plan = ::kubegate::PlanRecording(g_.config.recording, g_.config.RecordingDir(), rule, session);
  if (!plan) return std::nullopt;
  auto file = CreateRecordingFile(plan->path);
  if (!file && plan->required) {
    return Respond::Refuse(Error::Unavailable("kubegate: rule \"" + rule->name + "\" requires this session to be "
                                              "recorded, and the recording cannot start (" + file.error().message +
                                              "); nothing was forwarded"),
                           Refusal::kRecording, "recording-required", false);
  }
  if (!file) {
    g_.metrics.recording_failures.Increment();
    spdlog::warn("request {}: session not recorded: {}", ctx.request_id, file.error().message);
    return std::nullopt;
  }
  ctx.recording = std::move(*plan);
  ctx.recording_file = std::move(*file);
  return std::nullopt;
}

// Nothing reaches the cluster unless its decision record is committed
// (fail closed).
awaitable<StageResult> Session::CommitDecision(RequestContext& ctx) {
  const auto queued = std::chrono::steady_clock::now();
  std::string not_committed = co_await AwaitResume<std::string>(
      [&](std::function<void(std::string)> resume) { g_.audit.CommitDecision(ctx, std::move(resume)); });
  g_.metrics.ObserveAuditCommit(std::chrono::duration<double>(std::chrono::steady_clock::now() - queued).count());
  if (!not_committed.empty()) {
    ctx.audit = RequestContext::Audit::kRefused;
    co_return Respond::Refuse(Error::Unavailable(not_committed), Refusal::kAuditFailClosed, "", false);
  }
  ctx.audit = RequestContext::Audit::kCommitted;
  co_return std::nullopt;
}

// Asks the API server who a ServiceAccount token belongs to, with
// kubegate's own credential. Unreachable or refusing: 503, fail closed.
awaitable<Result<Identity>> Session::ReviewServiceAccountToken(std::string_view token, std::string& reason) {
  ServiceAccountAuthenticator& sa = *g_.service_accounts;
  http::request<http::string_body> req(http::verb::post, "/apis/authentication.k8s.io/v1/tokenreviews", 11);
  req.set(http::field::accept, "application/json");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "kubegate (ServiceAccount token review)");
  req.body() = sa.ReviewBody(token);
  req.prepare_payload();
  auto res = co_await OwnUpstreamRequest(pool_, g_.upstream_token.Current(), req);
  if (!res) {
    reason = "token_review_failed";
    co_return Error::Unavailable("kubegate could not reach the API server to review this ServiceAccount token, so "
                                 "nothing was forwarded: " + res.error().message);
  }
  co_return sa.FromReview(token, res->result_int(), res->body(), g_.clock.NowMillis(), reason);
}

awaitable<Result<NamespaceLabels>> Session::NamespaceLabelsOf(const std::string& ns) {
  const std::int64_t now = g_.clock.NowMillis();
  // A name that is not a DNS-1123 label cannot be a namespace: no labels,
  // and nothing to look up (the API server refuses such requests itself).
  if (!IsDns1123Label(ns)) co_return NamespaceLabels{};
  if (auto cached = g_.namespace_labels.Lookup(ns, now)) co_return std::move(*cached);
  http::request<http::string_body> req(http::verb::get, "/api/v1/namespaces/" + ns, 11);
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "kubegate (namespace labels for policy)");
  auto res = co_await OwnUpstreamRequest(pool_, g_.upstream_token.Current(), req);
  auto fail = [&](const std::string& why) {
    return Error::Unavailable("kubegate could not read the labels of namespace \"" + ns +
                              "\", which its policy needs to decide this request, so nothing was forwarded: " + why);
  };
  if (!res) co_return fail(res.error().message);
  NamespaceLabels labels;
  if (res->result() == http::status::not_found) {
    // No such namespace: no labels (the request itself will find nothing there).
  } else if (res->result() != http::status::ok) {
    co_return fail("the API server answered " + std::to_string(res->result_int()) +
                   " to kubegate's own credential (it needs get on namespaces)");
  } else {
    auto parsed = ParseNamespaceLabels(res->body());
    if (!parsed) co_return fail(parsed.error().message);
    labels = std::move(*parsed);
  }
  g_.namespace_labels.Store(ns, labels, now);
  co_return labels;
}

}  // namespace kubegate
