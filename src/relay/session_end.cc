#include "relay/session_end.h"

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

  std::string Notice(std::string_view message) const override {
    // Cut inside a header, or inside a frame too long to pad: not safe.
    if (broken_ || !header_.empty() || payload_left_ > kMaxPadding) return "";
    std::string out(static_cast<std::size_t>(payload_left_), '\0');
    std::string status = SessionEndStatusJson(message);
    std::string payload = base64_ ? "3" + Base64(status) : std::string(1, '\x03') + status;
    out += Frame(base64_ ? 0x1 : 0x2, payload);
    out += Frame(0x8, std::string("\x03\xE8", 2));  // close, 1000 (normal)
    return out;
  }

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
};

// SPDY/3.1: frames are an 8-byte header (its last 3 bytes the length)
// then the payload; the client's SYN_STREAMs name the error stream.
class SpdyEnd : public SessionEnd {
 public:
  void FromClient(std::string_view bytes) override {
    if (error_stream_ || client_broken_) return;
    reader_.Feed(bytes);
    while (auto f = reader_.Next()) {
      if (!f->control || f->type != spdy::kSynStream) continue;
      auto headers = inflater_.Inflate(f->header_block);
      if (!headers) {
        client_broken_ = true;
        return;
      }
      for (const auto& [k, v] : *headers) {
        if (k == "streamtype" && v == "error") error_stream_ = f->stream_id;
      }
      if (error_stream_) return;  // nothing more is needed from the client
    }
    client_broken_ = client_broken_ || reader_.error();
  }

  void FromServer(std::string_view bytes) override {
    while (!bytes.empty()) {
      if (payload_left_ > 0) {
        std::size_t n = std::min<std::size_t>(payload_left_, bytes.size());
        payload_left_ -= n;
        bytes.remove_prefix(n);
        continue;
      }
      header_ += bytes.front();
      bytes.remove_prefix(1);
      if (header_.size() == 8) {
        payload_left_ = (static_cast<std::size_t>(static_cast<unsigned char>(header_[5])) << 16) |
                        (static_cast<std::size_t>(static_cast<unsigned char>(header_[6])) << 8) |
                        static_cast<unsigned char>(header_[7]);
        header_.clear();
      }
    }
  }

  std::string Notice(std::string_view message) const override {
    if (!error_stream_ || !header_.empty() || payload_left_ > kMaxPadding) return "";
    std::string out(payload_left_, '\0');
    return out + spdy::DataFrame(error_stream_, SessionEndStatusJson(message), /*fin=*/true);
  }

 private:
  spdy::FrameReader reader_;
  spdy::HeaderInflater inflater_;
  std::uint32_t error_stream_ = 0;
  bool client_broken_ = false;
  std::string header_;
  std::size_t payload_left_ = 0;
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
