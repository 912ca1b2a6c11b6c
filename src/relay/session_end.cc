#include "relay/session_end.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

#include "spdy/spdy_frame.h"

namespace kubegate {

std::string SessionEndStatusJson(std::string_view message) {
  nlohmann::json status = {{"kind", "Status"},       {"apiVersion", "v1"},       {"metadata", nlohmann::json::object()},
                           {"status", "Failure"},    {"message", message},       {"reason", "Forbidden"},
                           {"code", 403}};
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// The longest rest of a cut frame that Notice pads; a frame header can
// claim far more (a hostile peer), and then no notice is sent.
constexpr std::uint64_t kMaxPadding = 1 << 20;

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3F];
  while (out.size() % 4) out += '=';
  return out;
}

// Where the server's WebSocket frames end: a frame header (2 to 14 bytes)
// then its payload.
class WebSocketEnd : public SessionEnd {
 public:
  explicit WebSocketEnd(bool base64) : base64_(base64) {}

  void FromClient(std::string_view) override {}

  void FromServer(std::string_view bytes) override {
    while (!bytes.empty() && !broken_) {
      if (payload_left_ > 0) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, bytes.size()));
        payload_left_ -= n;
        bytes.remove_prefix(n);
        continue;
      }
      header_ += bytes.front();
      bytes.remove_prefix(1);
      TryFinishHeader();
    }
  }

  std::string Notice(std::string_view message) override {
    // Cut inside a header, or inside a frame too long to pad: not safe.
    if (broken_ || !header_.empty() || payload_left_ > kMaxPadding) return "";
    std::string out(static_cast<std::size_t>(payload_left_), '\0');
    std::string status = SessionEndStatusJson(message);
    std::string payload = base64_ ? "3" + Base64(status) : std::string(1, '\x03') + status;
    out += Frame(base64_ ? 0x1 : 0x2, payload);
    out += Frame(0x8, std::string("\x03\xE8", 2));  // close, 1000 (normal)
    told_ = true;
    return out;
  }
  // The close frame ends it: nothing more is owed to the client.
  bool awaiting_client() const override { return false; }
  std::string AfterNotice(std::string_view) override { return ""; }
  bool told() const override { return told_; }

 private:
  static std::string Frame(std::uint8_t opcode, const std::string& payload) {
    std::string f(1, static_cast<char>(0x80 | opcode));
    const std::uint64_t n = payload.size();
    if (n < 126) {
      f += static_cast<char>(n);
    } else if (n < 65536) {
      f += static_cast<char>(126);
      f += static_cast<char>(n >> 8);
      f += static_cast<char>(n & 0xFF);
    } else {
      f += static_cast<char>(127);
      for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xFF);
    }
    return f + payload;
  }

  void TryFinishHeader() {
    if (header_.size() < 2) return;
    const auto b1 = static_cast<unsigned char>(header_[1]);
    const bool masked = b1 & 0x80;
    const std::uint64_t len7 = b1 & 0x7F;
    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    const std::size_t need = 2 + ext + (masked ? 4 : 0);
    if (header_.size() < need) return;
    std::uint64_t len = len7;
    if (ext) {
      len = 0;
      for (std::size_t i = 0; i < ext; ++i) len = (len << 8) | static_cast<unsigned char>(header_[2 + i]);
    }
    if (len > (std::uint64_t{1} << 40)) broken_ = true;  // no sane frame is this long
    payload_left_ = len;
    header_.clear();
  }

  const bool base64_;
  std::string header_;  // a frame header seen in part
  std::uint64_t payload_left_ = 0;
  bool broken_ = false;
  bool told_ = false;
};

// SPDY/3.1: frames are an 8-byte header (its last 3 bytes the length)
// then the payload. The client's SYN_STREAMs name its streams (one the
// error stream); the server's SYN_REPLY or RST_STREAM answers one.
class SpdyEnd : public SessionEnd {
 public:
  void FromClient(std::string_view bytes) override {
    if (!tracking_client_) return;
    reader_.Feed(bytes);
    while (tracking_client_) {
      auto f = reader_.Next();
      if (!f) break;
      if (!f->control) {
        // Data flows once the client has all its streams: nothing more
        // about them to learn, and no reason to copy its input.
        tracking_client_ = false;
        break;
      }
      if (f->type == spdy::kSynStream && !OnClientStream(*f)) return;
    }
    if (reader_.error()) Break();
  }

  void FromServer(std::string_view bytes) override {
    while (!bytes.empty()) {
      if (payload_left_ > 0) {
        std::size_t n = std::min<std::size_t>(payload_left_, bytes.size());
        // The stream id a SYN_REPLY or RST_STREAM answers: its first 4 bytes.
        if (answers_stream_ && id_bytes_.size() < 4) {
          std::size_t take = std::min<std::size_t>(4 - id_bytes_.size(), n);
          id_bytes_.append(bytes.substr(0, take));
          if (id_bytes_.size() == 4) Answered(spdy::StreamIdAt(id_bytes_.data()));
        }
        payload_left_ -= n;
        bytes.remove_prefix(n);
        continue;
      }
      header_ += bytes.front();
      bytes.remove_prefix(1);
      if (header_.size() == 8) StartServerFrame();
    }
  }

  std::string Notice(std::string_view message) override {
    // Cut inside a frame header, or a control frame (a header block cut
    // short would break the client's zlib stream), or too long to pad.
    if (broken_ || !header_.empty() || (payload_left_ > 0 && in_control_) || payload_left_ > kMaxPadding) {
      return "";
    }
    ended_ = true;
    message_ = std::string(message);
    return std::string(payload_left_, '\0') + EndStreams();
  }

  // kubectl returns once its output streams end and it has read the
  // Status, then hangs up; until then it may still be opening streams.
  bool awaiting_client() const override { return ended_ && !broken_; }

  std::string AfterNotice(std::string_view bytes) override {
    if (!awaiting_client()) return "";
    FromClient(bytes);
    return EndStreams();
  }

  bool told() const override { return told_; }

 private:
  // kubectl opens at most five streams (error, stdin, stdout, stderr, resize).
  static constexpr std::size_t kMaxStreams = 16;

  void Break() {
    broken_ = true;
    tracking_client_ = false;
  }

  // False when the client's stream cannot be followed any more.
  bool OnClientStream(const spdy::Frame& f) {
    auto headers = inflater_.Inflate(f.header_block);
    if (!headers || opened_.size() == kMaxStreams) {
      Break();
      return false;
    }
    for (const auto& [k, v] : *headers) {
      if (k == "streamtype" && v == "error" && !error_stream_) error_stream_ = f.stream_id;
    }
    opened_.push_back(f.stream_id);
    unanswered_.push_back(f.stream_id);
    return true;
  }

  void Answered(std::uint32_t id) {
    for (auto it = unanswered_.begin(); it != unanswered_.end(); ++it) {
      if (*it == id) {
        unanswered_.erase(it);
        return;
      }
    }
  }

  void StartServerFrame() {
    const auto b = [&](int i) { return static_cast<unsigned char>(header_[i]); };
    in_control_ = b(0) & 0x80;
    const std::uint16_t type = static_cast<std::uint16_t>((b(2) << 8) | b(3));
    payload_left_ = (static_cast<std::size_t>(b(5)) << 16) | (static_cast<std::size_t>(b(6)) << 8) | b(7);
    answers_stream_ = in_control_ && (type == spdy::kSynReply || type == spdy::kRstStream);
    id_bytes_.clear();
    // A header block (after a SYN_STREAM's 10 bytes, a SYN_REPLY's or
    // HEADERS' 4) means the server's zlib stream has begun.
    const std::size_t before_block = type == spdy::kSynStream ? 10 : 4;
    if (in_control_ && (type == spdy::kSynStream || type == spdy::kSynReply || type == spdy::kHeaders) &&
        payload_left_ > before_block) {
      headers_compressed_ = true;
    }
    header_.clear();
  }

  // A SYN_REPLY with no headers. The server's zlib stream, or the one
  // kubegate began, is continued with a stored block; if neither exists
  // yet, kubegate begins one (zlib header, dictionary id).
  std::string Reply(std::uint32_t id, bool fin) {
    if (!headers_compressed_) {
      headers_compressed_ = true;
      return spdy::SynReply(id, spdy::HeaderDeflater().Deflate({}), fin);
    }
    return spdy::SynReply(id, *spdy::StoredHeaderBlock({}), fin);
  }

  // Ends, on the server's behalf, each stream the client opened that was
  // not ended yet: a SYN_REPLY if the server never answered it, FIN on
  // every one (kubectl waits for its output streams to end before it
  // reports the error stream), the Status on the error stream.
  std::string EndStreams() {
    std::string out;
    for (; ended_streams_ < opened_.size(); ++ended_streams_) {
      const std::uint32_t id = opened_[ended_streams_];
      const bool unanswered = std::find(unanswered_.begin(), unanswered_.end(), id) != unanswered_.end();
      if (id == error_stream_) {
        if (unanswered) out += Reply(id, /*fin=*/false);
        out += spdy::DataFrame(id, SessionEndStatusJson(message_), /*fin=*/true);
        told_ = true;
      } else {
        out += unanswered ? Reply(id, /*fin=*/true) : spdy::DataFrame(id, "", /*fin=*/true);
      }
    }
    unanswered_.clear();
    return out;
  }

  // The client's side.
  spdy::FrameReader reader_;
  spdy::HeaderInflater inflater_;
  bool tracking_client_ = true;
  std::uint32_t error_stream_ = 0;
  std::vector<std::uint32_t> opened_;      // by the client, in order
  std::vector<std::uint32_t> unanswered_;  // opened by the client, no reply seen
  // The server's side, as written to the client.
  std::string header_;  // a frame header seen in part
  std::size_t payload_left_ = 0;
  bool in_control_ = false;
  bool answers_stream_ = false;
  std::string id_bytes_;
  bool headers_compressed_ = false;  // a header block has gone to the client
  // The end.
  bool broken_ = false;
  bool ended_ = false;
  std::size_t ended_streams_ = 0;  // opened_[0, ended_streams_) have been ended
  bool told_ = false;
  std::string message_;
};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<SessionEnd> SessionEnd::For(std::string_view upgrade, std::string_view protocol) {
  if (IEquals(upgrade, "websocket")) {
    if (protocol == "v5.channel.k8s.io" || protocol == "v4.channel.k8s.io" || protocol == "channel.k8s.io") {
      return std::make_unique<WebSocketEnd>(false);
    }
    if (protocol == "v4.base64.channel.k8s.io" || protocol == "base64.channel.k8s.io") {
      return std::make_unique<WebSocketEnd>(true);
    }
    return nullptr;  // port-forward over WebSocket, or unknown
  }
  if (IEquals(upgrade, "SPDY/3.1") && protocol.find("channel.k8s.io") != std::string_view::npos) {
    return std::make_unique<SpdyEnd>();
  }
  return nullptr;
}

}  // namespace kubegate
