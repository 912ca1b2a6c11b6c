// SPDY/3.1 framing as kubectl, the API server and the kubelet use it for
// exec, attach and port-forward (WIRE.md §1): frames, and the zlib
// compressed header blocks with one stream per direction and the SPDY/3
// dictionary. Plain C++ (zlib only); fed with bytes in any segmentation.
//
//   FrameReader r;
//   r.Feed(bytes);
//   while (auto f = r.Next()) { ... }          // complete frames only
//   HeaderInflater in;  auto h = in.Inflate(syn_stream.header_block);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kubegate::spdy {

enum ControlType : std::uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr std::uint8_t kFlagFin = 0x01;
// Frame payloads above this are refused (the protocol allows 16 MiB).
inline constexpr std::size_t kMaxFramePayload = 1 << 24;

struct Frame {
  bool control = false;
  std::uint16_t type = 0;        // control frames
  std::uint8_t flags = 0;
  std::uint32_t stream_id = 0;   // data frames, and control frames that name one
  std::string payload;           // data, or the control frame's body
  std::string header_block;      // SYN_STREAM, SYN_REPLY, HEADERS: compressed headers

  bool fin() const { return flags & kFlagFin; }
};

class FrameReader {
 public:
  void Feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete frame, or nullopt when more bytes are needed. After
  // an error() every call returns nullopt.
  std::optional<Frame> Next();
  bool error() const { return error_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  bool error_ = false;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One inflate context for a whole direction of a connection.
class HeaderInflater {
 public:
  HeaderInflater();
  ~HeaderInflater();
  std::optional<Headers> Inflate(std::string_view block);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One deflate context for a whole direction of a connection.
class HeaderDeflater {
 public:
  HeaderDeflater();
  ~HeaderDeflater();
  std::string Deflate(const Headers& headers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A header block that continues a direction's zlib stream without its
// compressor: one stored (uncompressed) deflate block, then the empty
// stored block a SYNC_FLUSH writes. SPDY/3 ends every
// header block with a SYNC_FLUSH (§2.6.10.1), which leaves the stream at a
// byte boundary where any deflate block may follow; only a stream that has
// begun (its zlib header and dictionary id sent) can be continued so.
// Nullopt above 64 KiB less one byte, the most one stored block holds.
std::optional<std::string> StoredHeaderBlock(const Headers& headers);

// The 31-bit stream id in the first 4 bytes of `p` (a data frame's header,
// a SYN_REPLY's or RST_STREAM's body), as FrameReader reads it.
std::uint32_t StreamIdAt(const char* p);

// Encoders for the frames a peer sends.
std::string DataFrame(std::uint32_t stream_id, std::string_view data, bool fin);
std::string SynReply(std::uint32_t stream_id, const std::string& header_block, bool fin = false);
std::string SynStream(std::uint32_t stream_id, const std::string& header_block, bool fin = false);
std::string Ping(std::uint32_t id);
std::string RstStream(std::uint32_t stream_id, std::uint32_t status);
std::string GoAway(std::uint32_t last_good_stream);

// The fixed SPDY/3 header-compression dictionary (1423 bytes), generated at
// build time from Debian's golang-github-docker-spdystream-dev.
std::string_view Dictionary();

}  // namespace kubegate::spdy
