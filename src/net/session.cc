// The request flow, in the order each request meets it (docs/architecture.md):
//   accept/TLS (server) -> read head -> framing -> authenticate -> classify
//   -> kubegate's own APIs -> read body -> decide -> hold -> recording plan
//   -> commit decision -> forward and relay -> Finish (reply, audit, log, count)
#include "net/io_helpers.h"
#include "net/session.h"

#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <filesystem>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/k8s_status.h"
#include "common/limits.h"
#include "net/http_framing.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using io::Redirect;

awaitable<Session::Served> Session::Serve(bool after_wait, beast::error_code wait_ec) {
  if (!handshaken_) {
    if (!co_await stream_.Handshake(peer_cert_, untrusted_peer_)) co_return Served::kClosed;
    handshaken_ = true;
  }
  // The wait for this call ended without a next request: timed out, or the
  // caller closed or broke the connection.
  if (wait_ec) {
    co_await stream_.LingeringClose();
    co_return Served::kClosed;
  }
  bool readable = after_wait;
  while (true) {
    beast::error_code ec;
    if (buffer_.size() == 0 && !readable) {
      // Idle between requests: the caller waits for the next one holding
      // only the session and its stream, with no coroutine frame
      // (memory per idle connection, docs/performance.md).
      buffer_.shrink_to_fit();
      stream_.expires_after(limits::kClientIdleTimeout);
      co_return Served::kIdle;
    }
    Head head;
    head.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(g_.max_head(), UINT32_MAX)));
    head.body_limit(boost::none);
    // Beast reads as far as the buffer's free room, at least 512 bytes: a
    // head of kubectl's size (an ID token alone is 1 KiB or more) comes in
    // one read, not a read per 512 bytes. Freed again when the session
    // goes idle or waits (AwaitCaller).
    buffer_.reserve(limits::kRequestHeadReadBytes);
    stream_.expires_after(limits::kRequestHeadTimeout);
    // The connection was just found readable, or a head came with the last
    // request's bytes: what is there is read and parsed now, and a whole
    // head goes on without a trip through the event loop. Anything else
    // (part of a head, an error, the end) is the read below's.
    if (readable && buffer_.capacity() > buffer_.size()) {
      buffer_.commit(stream_.ReadNow(buffer_.prepare(buffer_.capacity() - buffer_.size()), ec));
    }
    readable = false;
    while (!ec && buffer_.size() > 0 && !head.is_header_done()) {
      std::size_t used = head.put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more || used == 0) break;
    }
    if (ec == http::error::need_more) ec = {};
    if (!ec && !head.is_header_done()) co_await http::async_read_header(stream_, buffer_, head, Redirect(ec));
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof && ec != beast::error::timeout &&
          ec != asio::error::operation_aborted && ec != asio::ssl::error::stream_truncated &&
          ec != asio::error::connection_reset) {
        g_.metrics.rejected_bad_request.Increment();
        (void)co_await Reply(ParseErrorToStatus(ec), "", false);
      }
      break;
    }
    stream_.expires_never();
    g_.inflight++;
    bool keep = co_await HandleRequest(head);
    g_.inflight--;
    if (!keep || g_.stopping) break;
  }
  co_await stream_.LingeringClose();
  co_return Served::kClosed;
}

void ServeSession(std::shared_ptr<Session> s, std::shared_ptr<void> keep, bool after_wait, beast::error_code wait_ec) {
  auto ex = s->stream_executor();
  Session* raw = s.get();
  asio::co_spawn(ex, raw->Serve(after_wait, wait_ec),
                 [s = std::move(s), keep = std::move(keep)](std::exception_ptr e, Session::Served served) mutable {
                   if (e || served != Session::Served::kIdle) return;
                   Session* raw = s.get();
                   raw->WaitForNextRequest([s = std::move(s), keep = std::move(keep)](beast::error_code ec) mutable {
                     ServeSession(std::move(s), std::move(keep), true, ec);
                   });
                 });
}

// The stages, in order. Each either lets the request go on (nullopt) or
// says how it ends; every end goes through Finish.
awaitable<bool> Session::HandleRequest(Head& head) {
  g_.metrics.requests.Increment();
  bool keep = false;
  if (co_await ServeProbe(head, keep)) co_return keep;

  RequestContext ctx = ContextOf(head);
  // One stage per line; each runs only while the ones before said go on.
  // (Statements, not one && chain: GCC 12 evaluates a co_await inside a
  // short-circuit expression even when the left side decided.)
  StageResult r = CheckFraming(ctx, head);
  if (!r) r = co_await Authenticate(ctx, head);
  if (!r) r = Classify(ctx);
  if (!r) r = co_await ServeGatewayApi(ctx, head);
  if (!r) r = co_await ReadBodyToDecide(ctx, head);
  if (!r) r = co_await Decide(ctx, head);
  if (!r) r = co_await Hold(ctx, head);
  if (!r) r = PlanRecording(ctx, head);
  if (!r) r = co_await CommitDecision(ctx);
  if (!r) r = co_await ForwardAndRelay(ctx, head);
  co_return co_await Finish(ctx, std::move(*r));
}

RequestContext Session::ContextOf(const Head& head) const {
  const auto& req = head.get();
  RequestContext ctx;
  ctx.request_id = NewRequestId();
  ctx.received_ms = g_.clock.NowMillis();
  ctx.started = std::chrono::steady_clock::now();
  ctx.source = peer_;
  ctx.method = std::string(req.method_string());
  ctx.target = std::string(req.target());
  ctx.keep_alive = req.keep_alive();
  auto header = [&req](auto name) {
    auto it = req.find(name);
    return it == req.end() ? std::string() : std::string(it->value());
  };
  ctx.user_agent = header(http::field::user_agent);
  ctx.kubectl_command = header("Kubectl-Command");
  ctx.kubectl_session = header("Kubectl-Session");
  ctx.content_type = header(http::field::content_type);
  return ctx;
}

awaitable<bool> Session::Finish(RequestContext& ctx, Respond r) {
  Outcome o;
  std::string error;
  switch (r.kind) {
    case Respond::Kind::kRefuse:
      if (!ctx.info) {
        // Refused before the classify stage (framing, credentials): the
        // record still says what was asked, where the target can be read.
        if (auto info = ClassifyRequest(ctx.method, ctx.target)) ctx.info = std::move(*info);
      }
      if (!r.rule.empty()) {
        ctx.action = "deny";
        ctx.rule = r.rule;
        ctx.message = r.error.message;
      }
      g_.metrics.Count(r.counter);
      o = co_await Reply(r.error, ctx.request_id, r.keep_alive);
      error = r.error.message;
      break;
    case Respond::Kind::kAnswered:
      o = std::move(r.outcome);
      error = r.error.message;
      break;
    case Respond::Kind::kWithdrawn:
      o = std::move(r.outcome);
      error = "the caller disconnected while the request was held; it was withdrawn (" + r.error.message + ")";
      break;
  }
  // A session that never started: its recording file goes.
  if (ctx.recording_file) {
    ctx.recording_file->Close();
    std::error_code ec;
    std::filesystem::remove(ctx.recording->path, ec);
    ctx.recording_file.reset();
  }
  switch (ctx.audit) {
    case RequestContext::Audit::kNotYet:
      g_.audit.RecordAnswered(ctx, o, error);
      break;
    case RequestContext::Audit::kCommitted:
      g_.audit.RecordResult(ctx, o, error);
      break;
    case RequestContext::Audit::kRefused:
      break;  // the store refused the decision record: nothing can be written
  }
  Log(ctx, o);
  co_return o.keep_alive && r.kind != Respond::Kind::kWithdrawn;
}

// A Status is small: a client that does not read it in time is dropped.
awaitable<Outcome> Session::Reply(const Error& e, const std::string& request_id, bool keep_alive) {
  stream_.expires_after(limits::kRequestHeadTimeout);
  Outcome o =
      co_await ReplyBody(e.http_code, "application/json", StatusJson(e), request_id, keep_alive, e.retry_after_seconds);
  stream_.expires_never();
  co_return o;
}

awaitable<Outcome> Session::ReplyBody(int status, std::string_view content_type, std::string_view body,
                                      const std::string& request_id, bool keep_alive, int retry_after_seconds) {
  http::response<http::string_body> res(static_cast<http::status>(status), 11);
  res.set(http::field::content_type, content_type);
  if (retry_after_seconds > 0) res.set(http::field::retry_after, std::to_string(retry_after_seconds));
  if (!request_id.empty()) {  // not a probe
    res.set(http::field::cache_control, "no-cache, private");
    res.set("X-Kubegate-Request-Id", request_id);
  }
  res.body() = std::string(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ec;
  co_await http::async_write(stream_, res, Redirect(ec));
  Outcome o;
  o.status = status;
  o.bytes_out = res.body().size();
  o.keep_alive = keep_alive && !ec;
  co_return o;
}

void Session::Log(const RequestContext& ctx, const Outcome& o) const {
  if (!spdlog::should_log(spdlog::level::info)) return;
  nlohmann::ordered_json j;
  j["request_id"] = ctx.request_id;
  j["source"] = peer_;
  j["method"] = ctx.method;
  j["target"] = ctx.target;
  if (ctx.who) {
    j["user"] = ctx.who->user;
    j["groups"] = ctx.who->groups;
    j["kind"] = IdentityKindName(ctx.who->kind);
    j["auth"] = AuthMethodName(ctx.who->method);
    if (!ctx.who->auth_source.empty()) j["issuer"] = ctx.who->auth_source;
    if (!ctx.who->task.empty()) j["task"] = ctx.who->task;
  }
  if (!ctx.auth_failure.empty()) j["auth_failure"] = ctx.auth_failure;
  if (ctx.info) {
    const RequestInfo& info = *ctx.info;
    j["verb"] = info.verb;
    if (info.is_resource_request) {
      j["group"] = info.api_group;
      j["version"] = info.api_version;
      j["resource"] = info.resource;
      j["subresource"] = info.subresource;
      j["namespace"] = info.namespace_;
      j["name"] = info.name;
    } else {
      j["path"] = info.path;
    }
    if (info.dry_run) j["dry_run"] = true;
    if (info.exec) j["command"] = info.exec->command;
  }
  if (!ctx.rule.empty()) j["decision"] = ctx.rule;
  j["status"] = o.status;
  j["bytes_in"] = o.bytes_in;
  j["bytes_out"] = o.bytes_out;
  j["duration_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.started).count();
  spdlog::info("{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace kubegate
