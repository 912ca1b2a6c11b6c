// After a 101: the response head goes to the caller verbatim, then bytes
// both ways until either side closes. The recording tap sees a copy of each
// piece; a stream under a grant ends with the grant; a session kubegate ends
// is told why with a Status (relay/session_end.h).
#include <filesystem>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>

#include <spdlog/spdlog.h>

#include "approval/approval.h"
#include "common/limits.h"
#include "net/await.h"
#include "net/io_helpers.h"
#include "net/session.h"
#include "recording/stream_decoder.h"
#include "relay/session_end.h"

namespace kubegate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::awaitable;
using io::CloseUpstream;
using io::Redirect;
using namespace asio::experimental::awaitable_operators;

namespace {

// What one read from a client being ended takes (SPDY: a few SYN_STREAMs).
constexpr std::size_t kSessionEndReadBytes = 4096;

// Calls f with each contiguous piece of a buffer sequence. The sequence is
// a named parameter here: a range over the temporary that a buffer's data()
// returns would dangle before a loop body ran (issue 11's crash).
template <typename Buffers, typename F>
void ForEachPiece(const Buffers& buffers, F&& f) {
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
    f(std::string_view(static_cast<const char*>(it->data()), it->size()));
  }
}

// Ends a session's recording (on the writer thread) and returns what the
// audit result record keeps of it.
awaitable<nlohmann::json> FinishRecording(RecordingTap& tap, const std::string& path, const Clock& clock,
                                          std::string ended_by) {
  const std::int64_t now = clock.NowMillis();
  RecordingSummary s = co_await AwaitResume<RecordingSummary>(
      [&](std::function<void(RecordingSummary)> resume) { tap.Finish(now, ended_by, std::move(resume)); });
  nlohmann::json j = s.ToJson();
  j["file"] = std::filesystem::path(path).filename().string();
  co_return j;
}

}  // namespace

awaitable<Outcome> Session::RelayUpgrade(RequestContext& ctx, UpstreamConn& up, UpstreamResponse& rp) {
  Outcome out;
  out.status = 101;
  beast::error_code ec;
  auto& res = rp.get();
  const bool under_grant = !ctx.grant_id.empty() && g_.review;
  // The stream ends with the caller's identity (its store token revoked or
  // expired, its user disabled).
  const bool can_end = CanEnd(ctx);
  // The recording starts here, reading the protocol the 101 chose.
  const std::string upgrade(res[http::field::upgrade]);
  const std::string protocol(beast::iequals(upgrade, "websocket") ? res[http::field::sec_websocket_protocol]
                                                                   : res["X-Stream-Protocol-Version"]);
  const bool recording_required = ctx.recording && ctx.recording->required;
  // A session kubegate may end (a grant's, or one that must be recorded)
  // is ended with a Status kubectl prints, at a frame boundary.
  std::unique_ptr<SessionEnd> ender;
  if (under_grant || can_end || recording_required) ender = SessionEnd::For(upgrade, protocol);
  std::unique_ptr<RecordingTap> recorder;
  std::string recording_path;
  // Noted in the store while the session is open: if this process dies, a
  // replica that survives ends the recording and writes the result record
  // (ApprovalService::OrphanSessions).
  bool noted_open = false;
  if (ctx.recording_file) {
    RecordingHeader header = ctx.recording->header;
    header.start_ms = g_.clock.NowMillis();
    recording_path = ctx.recording->path;
    if (ApprovalService* svc = g_.approvals) {
      auto note = [svc, id = ctx.request_id, file = std::filesystem::path(recording_path).filename().string(),
                   kind = header.kind, at = header.start_ms] { return svc->SessionOpened(id, file, kind, at); };
      auto noted = co_await OnStoreThread<Result<bool>>(g_.store_thread, note);
      noted_open = noted.ok();
      if (!noted_open) spdlog::warn("request {}: its open session could not be noted: {}", ctx.request_id, noted.error().message);
    }
    recorder = std::make_unique<RecordingTap>(
        g_.recording_writer,
        std::make_unique<SessionRecorder>(std::move(ctx.recording_file), std::move(header), ctx.recording->options,
                                          nullptr),
        MakeSessionDecoder(upgrade, protocol, limits::kRecordingMaxMessageBytes), recording_required,
        limits::kRecordingMaxPendingBytes, ctx.recording->options.max_bytes);
  }
  auto finish_recording = [&](std::string ended_by) {
    if (noted_open) {
      asio::post(g_.store_thread, [svc = g_.approvals, id = ctx.request_id] { (void)svc->SessionClosed(id); });
    }
    return FinishRecording(*recorder, recording_path, g_.clock, std::move(ended_by));
  };
  http::response<http::empty_body> head(std::move(res.base()));
  http::response_serializer<http::empty_body> sr(head);
  co_await http::async_write_header(stream_, sr, Redirect(ec));
  if (ec) {
    // The cluster opened the session but the caller is gone: recorded as such.
    CloseUpstream(up.stream);
    if (recorder) out.recording = co_await finish_recording("the caller went away before the session started");
    co_return out;
  }
  // Bytes that arrived with the heads belong to the streams.
  if (up.buffer.size()) {
    out.bytes_out += up.buffer.size();
    ForEachPiece(up.buffer.data(), [&](std::string_view piece) {
      if (recorder) recorder->FromServer(piece, g_.clock.NowMillis());
      if (ender) ender->FromServer(piece);
    });
    co_await asio::async_write(stream_, up.buffer.data(), Redirect(ec));
    up.buffer.consume(up.buffer.size());
  }
  if (!ec && buffer_.size()) {
    out.bytes_in += buffer_.size();
    ForEachPiece(buffer_.data(), [&](std::string_view piece) {
      if (recorder) recorder->FromClient(piece, g_.clock.NowMillis());
      if (ender) ender->FromClient(piece);
    });
    co_await asio::async_write(up.stream, buffer_.data(), Redirect(ec));
    buffer_.consume(buffer_.size());
  }
  if (ec) {
    CloseUpstream(up.stream);
    if (recorder) out.recording = co_await finish_recording("the relay failed at its start");
    co_return out;
  }
  // Each pump shows the recording a copy of what it read, then writes it on
  // unchanged. A required recording that fails ends the session; one whose
  // writer is behind makes the pump wait for it.
  // Whether the server-to-client pump is inside a write: if the session is
  // cut then, the client's framing is unknown and no notice is added.
  bool writing_to_client = false;
  const Clock& clock = g_.clock;
  auto pump = [&recorder, &ender, &writing_to_client, recording_required, &out, &clock](
                  auto& from, auto& to, std::uint64_t& counter, bool from_client) -> awaitable<void> {
    std::vector<char> buf(limits::kRelayBufferBytes);
    beast::error_code e;
    asio::steady_timer wait(co_await asio::this_coro::executor);
    while (true) {
      from.expires_after(limits::kUpgradedIdleTimeout);
      std::size_t n = co_await from.async_read_some(asio::buffer(buf), Redirect(e));
      if (n) {
        counter += n;
        if (recorder) {
          std::string_view seen(buf.data(), n);
          if (from_client) {
            recorder->FromClient(seen, clock.NowMillis());
          } else {
            recorder->FromServer(seen, clock.NowMillis());
          }
          while (recorder->behind() && !recorder->failed()) {
            beast::error_code we;
            wait.expires_after(limits::kRecordingBehindPoll);
            co_await wait.async_wait(Redirect(we));
            if (we) co_return;  // the session is ending
          }
          if (recording_required && recorder->failed()) {
            out.closed_reason = "session closed by kubegate: its recording failed and the rule requires one";
            co_return;
          }
        }
        if (ender && from_client) ender->FromClient(std::string_view(buf.data(), n));
        if (!from_client) writing_to_client = true;
        co_await asio::async_write(to, asio::buffer(buf.data(), n), Redirect(e));
        if (!from_client && !e) {
          writing_to_client = false;
          if (ender) ender->FromServer(std::string_view(buf.data(), n));
        }
      }
      if (e) co_return;
    }
  };
  // One string per watcher: a loser, cancelled, still runs to its end.
  std::string grant_end, identity_end;
  if (under_grant && can_end) {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false) ||
              WatchGrant(ctx.grant_id, ctx.grant_expires_ms, grant_end) || WatchIdentity(*ctx.who, identity_end));
  } else if (under_grant) {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false) ||
              WatchGrant(ctx.grant_id, ctx.grant_expires_ms, grant_end));
  } else if (can_end) {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false) ||
              WatchIdentity(*ctx.who, identity_end));
  } else {
    co_await (pump(stream_, up.stream, out.bytes_in, true) || pump(up.stream, stream_, out.bytes_out, false));
  }
  if (!grant_end.empty()) g_.metrics.sessions_closed_by_grant.Increment();
  if (out.closed_reason.empty()) out.closed_reason = !grant_end.empty() ? grant_end : identity_end;
  if (!out.closed_reason.empty()) {
    CloseUpstream(up.stream);
    // Tell kubectl why, as the API server would: a Status on the error
    // channel, so it prints the reason and exits non-zero.
    if (ender && !writing_to_client) {
      // One deadline for the notice and for what the client still needs
      // after it (SPDY: replies to the streams it goes on opening).
      stream_.expires_after(limits::kSessionEndNoticeTimeout);
      // Counted once the write that carried the Status went out whole.
      bool status_written = false;
      std::string notice = ender->Notice(out.closed_reason);
      if (!notice.empty()) co_await asio::async_write(stream_, asio::buffer(notice), Redirect(ec));
      status_written = !ec && ender->told();
      std::vector<char> buf(kSessionEndReadBytes);
      while (!ec && ender->awaiting_client()) {
        std::size_t n = co_await stream_.async_read_some(asio::buffer(buf), Redirect(ec));
        if (ec) break;  // hung up (or the deadline): nothing more is owed
        std::string reply = ender->AfterNotice(std::string_view(buf.data(), n));
        if (!reply.empty()) co_await asio::async_write(stream_, asio::buffer(reply), Redirect(ec));
        status_written = status_written || (!ec && ender->told());
      }
      if (status_written) g_.metrics.sessions_ended_with_status.Increment();
    }
    stream_.Close();
  }
  CloseUpstream(up.stream);
  if (recorder) {
    out.recording = co_await finish_recording(out.closed_reason);
    if (!out.recording->value("write_error", std::string()).empty()) g_.metrics.recording_failures.Increment();
  }
  co_return out;
}

}  // namespace kubegate
