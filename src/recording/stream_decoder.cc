#include "recording/stream_decoder.h"

#include <map>

#include "common/text.h"
#include "recording/ws_reader.h"
#include "spdy/spdy_frame.h"

namespace kubegate {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

const char* ChannelName(int ch) {
  static const char* kNames[] = {"stdin", "stdout", "stderr", "error", "resize"};
  return ch >= 0 && ch < 5 ? kNames[ch] : "";
}

// SPDY streams of one connection: each direction has its own frame reader
// and inflate context; stream names come from SYN_STREAM headers.
class SpdyStreams {
 public:
  explicit SpdyStreams(std::vector<StreamEvent>& out, std::string& error) : out_(out), error_(error) {}

  void Feed(bool from_client, std::string_view bytes) {
    if (!error_.empty()) return;
    Direction& d = from_client ? client_ : server_;
    d.reader.Feed(bytes);
    while (auto f = d.reader.Next()) Handle(from_client, d, *f);
    if (d.reader.error()) error_ = "SPDY framing error";
  }

 private:
  struct Direction {
    spdy::FrameReader reader;
    spdy::HeaderInflater inflater;
  };
  struct Stream {
    std::string type, port, request_id;
  };

  void Handle(bool from_client, Direction& d, const spdy::Frame& f) {
    if (f.control) {
      if (f.type == spdy::kSynStream || f.type == spdy::kSynReply || f.type == spdy::kHeaders) {
        // Every block goes through the direction's one zlib context, in order.
        auto headers = d.inflater.Inflate(f.header_block);
        if (!headers) {
          error_ = "SPDY header block does not inflate";
          return;
        }
        if (f.type != spdy::kSynStream) return;
        Stream s;
        for (const auto& [k, v] : *headers) {
          if (IEquals(k, "streamtype")) s.type = v;
          if (IEquals(k, "port")) s.port = v;
          if (IEquals(k, "requestid")) s.request_id = v;
        }
        streams_[f.stream_id] = s;
        Emit(StreamEvent::Kind::kOpen, from_client, f.stream_id, "");
        if (f.fin()) Emit(StreamEvent::Kind::kClose, from_client, f.stream_id, "");
      } else if (f.type == spdy::kRstStream) {
        Emit(StreamEvent::Kind::kClose, from_client, f.stream_id, "");
        out_.back().reset = true;
      }
      return;
    }
    if (!f.payload.empty()) Emit(StreamEvent::Kind::kData, from_client, f.stream_id, f.payload);
    if (f.fin()) Emit(StreamEvent::Kind::kClose, from_client, f.stream_id, "");
  }

  void Emit(StreamEvent::Kind kind, bool from_client, std::uint32_t id, std::string data) {
    StreamEvent e;
    e.kind = kind;
    e.from_client = from_client;
    e.stream_id = id;
    if (auto it = streams_.find(id); it != streams_.end()) {
      e.channel = it->second.type;
      e.port = it->second.port;
      e.request_id = it->second.request_id;
    }
    e.size = data.size();
    e.data = std::move(data);
    out_.push_back(std::move(e));
  }

  std::vector<StreamEvent>& out_;
  std::string& error_;
  Direction client_, server_;
  std::map<std::uint32_t, Stream> streams_;
};

class SpdyDecoder final : public SessionDecoder {
 public:
  SpdyDecoder() : streams_(events_, error_) {}
  void FromClient(std::string_view b) override { streams_.Feed(true, b); }
  void FromServer(std::string_view b) override { streams_.Feed(false, b); }

 private:
  SpdyStreams streams_;
};

// WebSocket messages of both directions, each handed to OnMessage.
class WebSocketDecoder : public SessionDecoder {
 public:
  explicit WebSocketDecoder(std::size_t max_message) : client_(max_message), server_(max_message) {}
  void FromClient(std::string_view b) final { Feed(true, client_, b); }
  void FromServer(std::string_view b) final { Feed(false, server_, b); }

 protected:
  virtual void OnMessage(bool from_client, ws::Message& m) = 0;
  // Messages of both directions that start with `first` keep only it.
  void KeepOnlyFirstByte(std::uint8_t first) {
    client_.KeepOnlyFirstByte(first);
    server_.KeepOnlyFirstByte(first);
  }

 private:
  void Feed(bool from_client, ws::MessageReader& r, std::string_view bytes) {
    if (error()) return;
    r.Feed(bytes);
    while (!error()) {
      auto m = r.Next();
      if (!m) break;
      OnMessage(from_client, *m);
    }
    if (r.error() && error_.empty()) error_ = "WebSocket: " + r.error_message();
  }

  ws::MessageReader client_, server_;
};

// WebSocket carrying the Kubernetes channel protocol.
class WebSocketChannelDecoder final : public WebSocketDecoder {
 public:
  WebSocketChannelDecoder(bool base64, bool v5, std::size_t max_message)
      : WebSocketDecoder(max_message), base64_(base64), v5_(v5) {}

  // The channel byte of stdin, stdout and stderr is all that is kept. Not
  // for base64, whose decoded size needs the payload.
  void StopKeepingPayload() override {
    if (base64_) return;
    for (std::uint8_t ch = 0; ch <= 2; ++ch) KeepOnlyFirstByte(ch);
  }

 private:
  void OnMessage(bool from_client, ws::Message& m) override {
    if (m.opcode != ws::kBinary && m.opcode != ws::kText) return;  // close/ping/pong
    if (m.payload.empty()) return;
    StreamEvent e;
    e.from_client = from_client;
    unsigned char first = static_cast<unsigned char>(m.payload[0]);
    if (base64_) {
      if (first < '0' || first > '4') return;
      e.channel = ChannelName(first - '0');
      auto decoded = Base64Decode(std::string_view(m.payload).substr(1));
      e.data = decoded ? std::move(*decoded) : std::string();
      e.size = e.data.size();
    } else if (v5_ && first == 0xFF) {
      if (m.payload.size() < 2) return;
      e.kind = StreamEvent::Kind::kClose;
      e.channel = ChannelName(static_cast<unsigned char>(m.payload[1]));
    } else {
      e.channel = ChannelName(first);
      e.data = std::move(m.payload);
      e.data.erase(0, 1);  // in place: no second allocation of a large payload
      e.size = m.size - 1;
    }
    events_.push_back(std::move(e));
  }

  const bool base64_, v5_;
};

// Port-forward over WebSocket: the binary messages' payloads, in order, are
// a SPDY connection.
class WebSocketSpdyDecoder final : public WebSocketDecoder {
 public:
  explicit WebSocketSpdyDecoder(std::size_t max_message) : WebSocketDecoder(max_message), streams_(events_, error_) {}

 private:
  void OnMessage(bool from_client, ws::Message& m) override {
    if (m.opcode != ws::kBinary) return;
    if (m.truncated) {
      error_ = "a tunnelled SPDY message larger than the decoder's limit";
      return;
    }
    streams_.Feed(from_client, m.payload);
  }

  SpdyStreams streams_;
};

}  // namespace

std::unique_ptr<SessionDecoder> MakeSessionDecoder(std::string_view upgrade, std::string_view protocol,
                                                   std::size_t max_message) {
  if (IEquals(upgrade, "websocket")) {
    if (IEquals(protocol, "SPDY/3.1+portforward.k8s.io")) return std::make_unique<WebSocketSpdyDecoder>(max_message);
    if (IEquals(protocol, "v5.channel.k8s.io")) return std::make_unique<WebSocketChannelDecoder>(false, true, max_message);
    if (IEquals(protocol, "v4.channel.k8s.io") || IEquals(protocol, "channel.k8s.io") || protocol.empty()) {
      return std::make_unique<WebSocketChannelDecoder>(false, false, max_message);
    }
    if (IEquals(protocol, "base64.channel.k8s.io") || IEquals(protocol, "v4.base64.channel.k8s.io")) {
      return std::make_unique<WebSocketChannelDecoder>(true, false, max_message);
    }
    return nullptr;
  }
  if (IEquals(upgrade, "SPDY/3.1")) return std::make_unique<SpdyDecoder>();
  return nullptr;
}

}  // namespace kubegate
