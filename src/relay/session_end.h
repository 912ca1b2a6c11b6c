// SessionEnd: ends an exec or attach session the way the API server ends
// one, so kubectl prints why and exits non-zero, instead of seeing a
// connection that simply stops.
//
//   WebSocket channel protocols (v5/v4/channel.k8s.io, and the base64
//     ones): a server message on the error channel (3) holding a
//     metav1.Status with status Failure, then a close frame (1000).
//   SPDY/3.1 (kubectl <= 1.29): a DATA frame with FIN on the stream the
//     client opened with `streamtype: error`, carrying the same Status.
//     kubectl opens its streams one at a time and waits for the reply to
//     each before it reads any (30 s, then "Timeout occurred"), so each
//     stream the server has not answered gets a SYN_REPLY from kubegate
//     first, and streams kubectl opens after the notice get one too.
//
// The relay shows it copies of the bytes both ways (as written), so it
// knows where the server's frames end and, for SPDY, the client's streams:
//
//   auto end = SessionEnd::For("websocket", "v5.channel.k8s.io");
//   end->FromServer(bytes_written_to_client);  end->FromClient(bytes_read);
//   std::string notice = end->Notice("session closed by kubegate: grant gr-1 expired");
//   if (!notice.empty()) write(client, notice);
//   while (end->awaiting_client() && !deadline) write(client, end->AfterNotice(read(client)));
//   // then close
//
// Plain C++; it never changes the relayed bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace kubegate {

class SessionEnd {
 public:
  virtual ~SessionEnd() = default;
  // Null for port-forward and for protocols kubegate cannot speak.
  static std::unique_ptr<SessionEnd> For(std::string_view upgrade, std::string_view protocol);

  virtual void FromClient(std::string_view bytes) = 0;
  virtual void FromServer(std::string_view bytes) = 0;
  // Ends the session; called once, after the server's side is closed. What
  // to write to the client now: the rest of a server data frame the relay
  // stopped in the middle of, padded with zero bytes (so the client's
  // framing stays intact); for SPDY a SYN_REPLY to each stream the server
  // left unanswered and FIN on every stream the client opened; then the
  // Status on the error channel and, for WebSocket, a close frame. Empty
  // when it cannot be done safely (a frame header, or a SPDY control frame,
  // cut in the middle; an unreadable stream: awaiting_client() is then
  // false), or, for SPDY, when the client has opened no stream yet. A SPDY
  // client that has not opened its error stream yet gets the Status from
  // AfterNotice once it does.
  virtual std::string Notice(std::string_view message) = 0;
  // After Notice, whether kubegate should go on reading from the client
  // (bounded by the caller) until it hangs up: SPDY, ended cleanly.
  virtual bool awaiting_client() const = 0;
  // What to write back for bytes the client sent after the notice (SPDY: a
  // SYN_REPLY to each stream it opens; the Status when that is the error
  // stream). Nothing the client sends then goes anywhere else.
  virtual std::string AfterNotice(std::string_view client_bytes) = 0;
  // Whether Notice or AfterNotice has returned the Status (the caller
  // knows whether its write of those bytes succeeded).
  virtual bool told() const = 0;
};

// {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":...,"reason":"Forbidden","code":403}
std::string SessionEndStatusJson(std::string_view message);

}  // namespace kubegate
