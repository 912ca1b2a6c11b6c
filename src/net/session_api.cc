// kubegate's own endpoints: probes (unauthenticated, not audited), and for
// authenticated callers /metrics, the audit log API (auditors only) and
// the approvals API. Every answer but a probe's goes through Finish.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>

#include "approval/approval_api.h"
#include "audit/audit_api.h"
#include "credentials/credential_api.h"
#include "credentials/identity_api.h"
#include "common/k8s_status.h"
#include "common/limits.h"
#include "net/await.h"
#include "net/http_framing.h"
#include "net/session.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;

awaitable<bool> Session::ServeProbe(Head& head, bool& keep) {
  const auto& req = head.get();
  if (req.method() != http::verb::get) co_return false;
  const std::string_view target(req.target().data(), req.target().size());
  const bool keep_alive = req.keep_alive() && head.is_done();
  // Liveness.
  if (target == "/healthz" || target == "/livez") {
    keep = (co_await ReplyBody(200, "text/plain; charset=utf-8", "ok", "", keep_alive)).keep_alive;
    co_return true;
  }
  if (target != "/readyz") co_return false;
  // Readiness: the audit store takes writes and a verified upstream
  // connection can be had.
  if (!g_.audit.healthy()) {
    keep = (co_await ReplyBody(503, "text/plain; charset=utf-8", "audit store unavailable", "", false)).keep_alive;
    co_return true;
  }
  bool reused = false;
  auto conn = co_await pool_.Acquire(reused);
  // (if/else, not ?: : GCC 12 destroys a ?: of two co_awaits twice.)
  Outcome o;
  if (conn) {
    o = co_await ReplyBody(200, "text/plain; charset=utf-8", "ok", "", keep_alive);
    pool_.Release(std::move(*conn));
  } else {
    o = co_await ReplyBody(503, "text/plain; charset=utf-8", conn.error().message, "", false);
  }
  keep = o.keep_alive;
  co_return true;
}

awaitable<StageResult> Session::ServeGatewayApi(RequestContext& ctx, Head& head) {
  const RequestInfo& info = *ctx.info;
  if (info.is_resource_request) co_return std::nullopt;
  if (head.get().method() == http::verb::get && info.path == "/metrics") {
    ctx.action = "allow";
    ctx.rule = "gateway-metrics";
    Outcome o = co_await ReplyBody(200, "text/plain; version=0.0.4; charset=utf-8",
                                   g_.metrics.Scrape(g_.metrics_snapshot()), ctx.request_id, ctx.keep_alive);
    co_return Respond::Answered(o);
  }
  if (IsAuditApiPath(info.path)) co_return co_await ServeAuditApi(ctx);
  if (IsApprovalApiPath(info.path)) co_return co_await ServeApprovalApi(ctx, head);
  if (IsTaskApiPath(info.path)) co_return co_await ServeCredentialApi(ctx, head, "task-api");
  if (IsIdentityApiPath(info.path)) co_return co_await ServeCredentialApi(ctx, head, "identity-api");
  co_return std::nullopt;
}

// GET /kubegate/v1/audit[...]: the audit log for auditors; the query runs
// on the store thread.
awaitable<StageResult> Session::ServeAuditApi(RequestContext& ctx) {
  const Identity& who = *ctx.who;
  const RequestInfo& info = *ctx.info;
  if (!IsAuditor(who, g_.config.auditors)) {
    co_return Respond::Refuse(Error::Forbidden("user \"" + who.user + "\" is not an auditor of kubegate's audit log "
                                               "(config: auditors.users / auditors.groups)"),
                              Refusal::kForbidden, "audit-api", ctx.keep_alive);
  }
  if (info.verb != "get") {
    co_return Respond::Refuse(Error{405, "MethodNotAllowed", "the audit log is read-only"}, Refusal::kNone,
                              "audit-api", ctx.keep_alive);
  }
  auto parsed = ParseAuditApiRequest(info.path, info.raw_query, g_.clock.NowMillis());
  if (!parsed) co_return Respond::Refuse(parsed.error(), Refusal::kNone, "audit-api", ctx.keep_alive);
  ctx.action = "allow";
  ctx.rule = "audit-api";
  AuditApiRequest api = std::move(*parsed);
  api.recording_dir = g_.config.RecordingDir();
  auto query = [this, &api] { return g_.audit_query(api); };
  AuditApiResponse resp = co_await OnStoreThread<AuditApiResponse>(g_.store_thread, query);
  Outcome o = co_await ReplyBody(resp.status, resp.content_type, resp.body, ctx.request_id, ctx.keep_alive);
  co_return Respond::Answered(o);
}

// The body of a call to kubegate's own API (bounded), with the request's
// rule set for the record either way.
awaitable<StageResult> Session::ReadApiBody(RequestContext& ctx, Head& head, const char* rule) {
  ctx.rule = rule;
  ctx.action = "allow";
  if (head.is_done()) co_return std::nullopt;
  auto refused = co_await ReadBody(ctx, head, limits::kMaxApprovalApiBody);
  if (refused) refused->rule = rule;
  co_return refused;
}

// /kubegate/v1/approvals and /kubegate/v1/grants: deciding, with the
// caller's own identity; runs on the store thread.
awaitable<StageResult> Session::ServeApprovalApi(RequestContext& ctx, Head& head) {
  if (auto refused = co_await ReadApiBody(ctx, head, "approval-api")) co_return refused;
  const std::string body = ctx.body.value_or("");
  ApprovalApiResponse resp;
  if (!g_.approvals) {
    resp = {503, "application/json", StatusJson(Error::Unavailable("approvals are not available")), std::nullopt};
  } else {
    ApprovalService* svc = g_.approvals;
    const bool auditor = IsAuditor(*ctx.who, g_.config.auditors);
    auto run = [svc, &ctx, auditor, &body] {
      return RunApprovalApi(*svc, *ctx.who, auditor, ctx.method, ctx.info->path, ctx.info->raw_query, body);
    };
    resp = co_await OnStoreThread<ApprovalApiResponse>(g_.store_thread, run);
  }
  if (resp.status >= 400) ctx.action = "deny";
  if (resp.decided) {
    ctx.approval = ApprovalAuditFacts(*resp.decided, nullptr, 0);
    if (g_.events) g_.events->Notify(ApprovalStateName(resp.decided->state), *resp.decided);
  }
  Outcome o = co_await ReplyBody(resp.status, resp.content_type, resp.body, ctx.request_id, ctx.keep_alive);
  co_return Respond::Answered(o, resp.status >= 400 ? resp.body : "");
}

// /kubegate/v1/tasks (per-task agent tokens, for brokers) and
// /kubegate/v1/identities, /kubegate/v1/tokens (identities and their
// static tokens, for identity admins): run on the store thread with the
// caller's own identity. The change goes into this request's own audit
// record, and this gateway's credential cache reloads at once (a new token
// works, a revoked one or a disabled user stops; other replicas follow at
// their next poll).
awaitable<StageResult> Session::ServeCredentialApi(RequestContext& ctx, Head& head, const char* rule) {
  if (auto refused = co_await ReadApiBody(ctx, head, rule)) co_return refused;
  const std::string body = ctx.body.value_or("");
  TaskApiResponse resp;
  if (!g_.credentials || !g_.identities) {
    resp = {503, StatusJson(Error::Unavailable("runtime credentials are not available")), nullptr};
  } else {
    CredentialStore* store = g_.credentials;
    IdentityStore* ids = g_.identities;
    CredentialCache* cache = g_.credential_cache;
    const bool tasks = IsTaskApiPath(ctx.info->path);
    const bool auditor = IsAuditor(*ctx.who, g_.config.auditors);
    const bool broker = IsAuditor(*ctx.who, g_.config.brokers);
    const BrokerLimits limits{g_.config.broker_agents, g_.config.broker_agent_groups};
    IdentityApiRoles roles{IsAuditor(*ctx.who, g_.config.identity_admins), auditor,
                           g_.config.identity_assignable_groups, {}};
    for (const TokenEntry& t : g_.config.tokens) roles.reserved_names.push_back(t.user);
    auto run = [&, store, ids, cache] {
      TaskApiResponse r = tasks ? RunTaskApi(*store, ids, *ctx.who, broker, auditor, limits, ctx.method,
                                             ctx.info->path, ctx.info->raw_query, body)
                                : RunIdentityApi(*store, *ids, *ctx.who, roles, ctx.method, ctx.info->path,
                                                 ctx.info->raw_query, body);
      if (!r.change.is_null() && cache) {
        if (auto snapshot = store->Snapshot()) cache->Load(std::move(*snapshot));
      }
      return r;
    };
    resp = co_await OnStoreThread<TaskApiResponse>(g_.store_thread, run);
  }
  if (resp.status >= 400) ctx.action = "deny";
  ctx.identity_change = resp.change;
  Outcome o = co_await ReplyBody(resp.status, "application/json", resp.body, ctx.request_id, ctx.keep_alive);
  co_return Respond::Answered(o, resp.status >= 400 ? resp.body : "");
}

}  // namespace kubegate
