// SessionDecoder: the Kubernetes streams inside an upgraded exec, attach or
// port-forward connection, decoded from copies of its bytes both ways.
//
//   WebSocket, channel protocols (v5.channel.k8s.io, v4.channel.k8s.io,
//     channel.k8s.io, "" and the base64 variants): each data message is a
//     channel byte (or ASCII digit) and its payload; v5 adds close [0xFF ch].
//   SPDY/3.1 (exec and attach with X-Stream-Protocol-Version, port-forward
//     with portforward.k8s.io): one stream per channel, named by the
//     `streamtype` header of its SYN_STREAM; port-forward streams carry
//     `port` and `requestid`. Header blocks are inflated with one zlib
//     context per direction.
//   WebSocket SPDY/3.1+portforward.k8s.io: binary messages whose
//     concatenation is a SPDY connection.
//
//   auto d = MakeSessionDecoder(upgrade, subprotocol);   // from the 101's headers
//   d->FromClient(bytes); d->FromServer(bytes);           // any segmentation
//   for (auto& e : d->Take()) ...                          // in order of arrival
//
// The decoder never changes or delays the relayed bytes. After a protocol
// error it stops (error() says why) and the relay goes on unrecorded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kubegate {

struct StreamEvent {
  enum class Kind { kOpen, kData, kClose };
  Kind kind = Kind::kData;
  bool from_client = false;
  // exec/attach: stdin, stdout, stderr, error, resize; port-forward: data,
  // error. "" when a stream was never named.
  std::string channel;
  std::string data;        // at most the decoder's message limit
  std::uint64_t size = 0;  // the payload's full length
  // SPDY: the stream, and for port-forward its `port` and `requestid`.
  std::uint32_t stream_id = 0;
  std::string port, request_id;
  bool reset = false;  // kClose by RST_STREAM: both directions are done
  // Set by the recording tap when it could not queue the payload: `size`
  // is still the payload's length, `data` is empty.
  bool payload_dropped = false;
};

class SessionDecoder {
 public:
  virtual ~SessionDecoder() = default;
  virtual void FromClient(std::string_view bytes) = 0;
  virtual void FromServer(std::string_view bytes) = 0;
  std::vector<StreamEvent> Take() { return std::exchange(events_, {}); }
  // From now on the payload of stdin, stdout and stderr need not be kept
  // (the recording's cap is reached): their events still come, with
  // `size`, but `data` may be empty. Decoders that can skip copying and
  // unmasking such payload do (WebSocket channel protocols); others go on
  // as before.
  virtual void StopKeepingPayload() {}
  bool error() const { return !error_.empty(); }
  const std::string& error_message() const { return error_; }

 protected:
  std::vector<StreamEvent> events_;
  std::string error_;
};

// `upgrade` is the 101's Upgrade header ("websocket" or "SPDY/3.1"), and
// `protocol` its Sec-WebSocket-Protocol or X-Stream-Protocol-Version.
// Null for a protocol kubegate cannot read (the session is then relayed
// and recorded as unreadable).
std::unique_ptr<SessionDecoder> MakeSessionDecoder(std::string_view upgrade, std::string_view protocol,
                                                   std::size_t max_message);

}  // namespace kubegate
