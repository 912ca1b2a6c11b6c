// Decoders against the raw bytes real kubectl sent (captures 30 and 31 in
// ../shared/kubectl-wire, copied to testdata/): the expected streams come
// from the capture tool's own decoding in the same files. Then every
// segmentation, and the framing cases kubectl does not happen to produce.
#include "recording/stream_decoder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "recording/ws_reader.h"
#include "spdy/spdy_frame.h"

namespace kubegate {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(KUBEGATE_SOURCE_DIR) + "/src/recording/testdata/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Python's repr of bytes: b'...' or b"...".
std::string PyBytes(std::string_view s) {
  auto at = s.find("b'");
  char quote = '\'';
  auto dq = s.find("b\"");
  if (at == std::string_view::npos || (dq != std::string_view::npos && dq < at)) {
    at = dq;
    quote = '"';
  }
  std::string out;
  for (std::size_t i = at + 2; i < s.size() && s[i] != quote; ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    char c = s[++i];
    if (c == 'n') out.push_back('\n');
    else if (c == 'r') out.push_back('\r');
    else if (c == 't') out.push_back('\t');
    else if (c == 'x') {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else out.push_back(c);
  }
  return out;
}

struct Capture {
  std::vector<std::string> client_segments;  // RAW <- lines, as they arrived
  std::vector<std::string> lines;
};

Capture ParseCapture(const std::string& text) {
  Capture c;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    c.lines.push_back(line);
    auto raw = line.find("RAW <- ");
    if (raw == std::string::npos) continue;
    std::string seg;
    std::istringstream hex(line.substr(line.find(':', raw) + 1));
    std::string byte;
    while (hex >> byte) seg.push_back(static_cast<char>(std::stoi(byte, nullptr, 16)));
    c.client_segments.push_back(seg);
  }
  return c;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s;
  return out;
}

// "channel:payload" for data, "close:channel" for closes, "open:type" for SPDY streams.
std::vector<std::string> Describe(const std::vector<StreamEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    switch (e.kind) {
      case StreamEvent::Kind::kOpen: out.push_back("open:" + e.channel + (e.port.empty() ? "" : ":" + e.port)); break;
      case StreamEvent::Kind::kClose: out.push_back("close:" + e.channel); break;
      case StreamEvent::Kind::kData: out.push_back(e.channel + ":" + e.data); break;
    }
  }
  return out;
}

// Feeds `bytes` in pieces cut by `cut` (lengths), then returns the events.
std::vector<std::string> FeedClient(SessionDecoder& d, const std::vector<std::string>& pieces) {
  for (const auto& p : pieces) d.FromClient(p);
  EXPECT_FALSE(d.error()) << d.error_message();
  return Describe(d.Take());
}

std::vector<std::vector<std::string>> Segmentations(const std::string& all, const std::vector<std::string>& captured) {
  std::vector<std::vector<std::string>> out = {captured, {all}};
  std::vector<std::string> bytes;
  for (char c : all) bytes.emplace_back(1, c);
  out.push_back(bytes);
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> cut;
    for (std::size_t i = 0; i < all.size();) {
      std::size_t n = 1 + rng() % 9;
      cut.push_back(all.substr(i, n));
      i += n;
    }
    out.push_back(cut);
  }
  return out;
}

TEST(StreamDecoder, WebSocketExecFromKubectl132CaptureInAnySegmentation) {
  Capture cap = ParseCapture(ReadTestdata("31-exec-it-ws-conn-009.log"));
  std::vector<std::string> want;
  for (const auto& l : cap.lines) {
    auto at = l.find("WS <- op=2 masked=1 channel=");
    if (at == std::string::npos) continue;
    int ch = l[at + 28] - '0';
    static const char* kNames[] = {"stdin", "stdout", "stderr", "error", "resize"};
    want.push_back(std::string(kNames[ch]) + ":" + PyBytes(l));
  }
  ASSERT_EQ(want.size(), 3u);  // resize 120x40, resize 100x30, stdin "ls\r"
  std::string all = Join(cap.client_segments);
  for (const auto& pieces : Segmentations(all, cap.client_segments)) {
    auto d = MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20);
    ASSERT_TRUE(d);
    EXPECT_EQ(FeedClient(*d, pieces), want) << pieces.size() << " pieces";
  }
  // The server's side, as the capture shows it: unmasked binary frames.
  auto d = MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20);
  for (const auto& l : cap.lines) {
    auto at = l.find("WS -> channel=");
    if (at == std::string::npos) continue;
    std::string payload = std::string(1, static_cast<char>(l[at + 14] - '0')) + PyBytes(l);
    std::string frame = {static_cast<char>(0x82), static_cast<char>(payload.size())};
    for (char c : frame + payload) d->FromServer(std::string(1, c));
  }
  EXPECT_EQ(Describe(d->Take()), (std::vector<std::string>{"stdout:hello from fake apiserver over WebSocket\r\n",
                                                           R"(error:{"metadata": {}, "status": "Success"})"}));
}

TEST(StreamDecoder, SpdyExecFromCapture30InAnySegmentation) {
  Capture cap = ParseCapture(ReadTestdata("30-exec-it-spdy-conn-005.log"));
  std::vector<std::string> want;
  for (const auto& l : cap.lines) {
    if (l.find("SPDY <- SYN_STREAM") != std::string::npos) {
      auto q = l.find("('streamtype', '");
      want.push_back("open:" + l.substr(q + 16, l.find('\'', q + 16) - q - 16));
    } else if (l.find("SPDY <- DATA") != std::string::npos) {
      auto paren = l.find('(');
      want.push_back(l.substr(paren + 1, l.find(')') - paren - 1) + ":" + PyBytes(l));
    } else if (l.find("SPDY <- RST_STREAM") != std::string::npos) {
      std::uint32_t id = std::stoul(l.substr(l.find("body=") + 5, 8), nullptr, 16);
      static const char* kById[] = {"", "error", "", "stdin", "", "stdout", "", "resize"};
      want.push_back(std::string("close:") + kById[id]);
    }
  }
  ASSERT_EQ(want.size(), 11u);
  std::string all = Join(cap.client_segments);
  for (const auto& pieces : Segmentations(all, cap.client_segments)) {
    auto d = MakeSessionDecoder("SPDY/3.1", "v5.channel.k8s.io", 1 << 20);
    EXPECT_EQ(FeedClient(*d, pieces), want) << pieces.size() << " pieces";
  }
  // The server's side: SYN_REPLYs (through the server's own deflate context),
  // stdout, then the exit Status on the error stream.
  spdy::HeaderDeflater deflate;
  std::string server;
  for (std::uint32_t id : {1u, 3u, 5u, 7u}) server += spdy::SynReply(id, deflate.Deflate({}));
  server += spdy::DataFrame(5, "hello from fake apiserver over SPDY\r\n", false);
  server += spdy::DataFrame(5, "", true);
  server += spdy::DataFrame(1, R"({"metadata": {}, "status": "Success"})", true);
  auto d = MakeSessionDecoder("SPDY/3.1", "v5.channel.k8s.io", 1 << 20);
  for (const auto& p : cap.client_segments) d->FromClient(p);
  d->Take();
  for (char c : server) d->FromServer(std::string(1, c));
  EXPECT_FALSE(d->error()) << d->error_message();
  EXPECT_EQ(Describe(d->Take()),
            (std::vector<std::string>{"stdout:hello from fake apiserver over SPDY\r\n", "close:stdout",
                                      R"(error:{"metadata": {}, "status": "Success"})", "close:error"}));
}

// A client frame: masked with `key`, with the length form the size needs.
std::string ClientFrame(std::uint8_t first_byte, std::string_view payload, std::uint32_t key = 0x37fa213d) {
  std::string f(1, static_cast<char>(first_byte));
  std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>(static_cast<std::uint64_t>(n) >> (8 * i)));
  }
  unsigned char k[4] = {static_cast<unsigned char>(key >> 24), static_cast<unsigned char>(key >> 16),
                        static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
  for (unsigned char b : k) f.push_back(static_cast<char>(b));
  for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ k[i & 3]));
  return f;
}

TEST(WsMessageReader, LengthsFragmentsControlFramesAndLimits) {
  std::string medium(300, 'm'), large(70000, 'L');
  std::string bytes = ClientFrame(0x82, "\x01" + medium) + ClientFrame(0x82, "\x01" + large) +
                      // "ab" + ping + "cd": a fragmented message with a control frame inside
                      ClientFrame(0x02, std::string("\0ab", 3)) + ClientFrame(0x89, "hi") + ClientFrame(0x80, "cd") +
                      ClientFrame(0x82, std::string("\xff\0", 2)) + ClientFrame(0x88, "\x03\xe8");
  ws::MessageReader r(1000);
  for (std::size_t i = 0; i < bytes.size(); i += 7) r.Feed(std::string_view(bytes).substr(i, 7));
  std::vector<ws::Message> got;
  while (auto m = r.Next()) got.push_back(*m);
  ASSERT_FALSE(r.error()) << r.error_message();
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].payload, "\x01" + medium);
  EXPECT_FALSE(got[0].truncated);
  EXPECT_EQ(got[1].size, 70001u);
  EXPECT_TRUE(got[1].truncated);
  EXPECT_EQ(got[1].payload, "\x01" + large.substr(0, 999));
  EXPECT_EQ(got[2].opcode, ws::kPing);
  EXPECT_EQ(got[2].payload, "hi");
  EXPECT_EQ(got[3].payload, std::string("\0abcd", 5));
  EXPECT_EQ(got[4].payload, std::string("\xff\0", 2));
  EXPECT_EQ(got[5].opcode, ws::kClose);

  // Through the channel layer: v5 close, and the base64 protocol.
  auto d = MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20);
  d->FromClient(ClientFrame(0x82, std::string("\0ls\n", 4)) + ClientFrame(0x82, std::string("\xff\0", 2)));
  EXPECT_EQ(Describe(d->Take()), (std::vector<std::string>{"stdin:ls\n", "close:stdin"}));
  auto b64 = MakeSessionDecoder("websocket", "base64.channel.k8s.io", 1 << 20);
  b64->FromServer(std::string("\x81\x09") + "1aGVsbG8=");
  EXPECT_EQ(Describe(b64->Take()), (std::vector<std::string>{"stdout:hello"}));
  EXPECT_FALSE(MakeSessionDecoder("h2c", "", 1 << 20));

  for (const std::string& bad : {ClientFrame(0x80, "x"), ClientFrame(0x83, "x"), ClientFrame(0x09, "x"),
                                 ClientFrame(0x02, "a") + ClientFrame(0x02, "b")}) {
    ws::MessageReader e(100);
    e.Feed(bad);
    EXPECT_TRUE(e.error());
    EXPECT_FALSE(e.Next() && e.Next());
  }
}

// Past a recording's cap the channel decoder keeps only the channel byte
// of stdin/stdout/stderr messages (masked or not, in any segmentation), yet
// counts their whole size; the error channel keeps its payload.
TEST(StreamDecoder, AfterStopKeepingPayloadDataMessagesAreCountedNotKept) {
  std::string big(70000, 'x');
  auto d = MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20);
  d->FromClient(ClientFrame(0x82, std::string("\0before", 7)));
  d->StopKeepingPayload();
  // Masked, with a key whose first byte would turn the channel byte into
  // another channel if the mask were not applied before the choice.
  const std::string client = ClientFrame(0x82, std::string(1, '\0') + big, 0x03000000) +
                             ClientFrame(0x02, std::string("\0ab", 3)) + ClientFrame(0x80, "cd");
  for (std::size_t i = 0; i < client.size(); i += 5) d->FromClient(std::string_view(client).substr(i, 5));
  const std::string status = R"({"status":"Success"})";
  d->FromServer(std::string("\x82\x7e\x11\x71") + "\x01" + big.substr(0, 4464));  // 4465-byte stdout message
  d->FromServer(std::string("\x82") + static_cast<char>(status.size() + 1) + "\x03" + status);
  ASSERT_FALSE(d->error()) << d->error_message();
  auto events = d->Take();
  ASSERT_EQ(events.size(), 5u) << Join(Describe(events));
  EXPECT_EQ(events[0].data, "before");
  EXPECT_EQ(events[1].channel, "stdin");
  EXPECT_EQ(events[1].data, "");
  EXPECT_EQ(events[1].size, 70000u);
  EXPECT_EQ(events[2].channel, "stdin");
  EXPECT_EQ(events[2].size, 4u);  // a fragmented message, "abcd"
  EXPECT_EQ(events[2].data, "");
  EXPECT_EQ(events[3].channel, "stdout");
  EXPECT_EQ(events[3].data, "");
  EXPECT_EQ(events[3].size, 4464u);
  EXPECT_EQ(events[4].channel, "error");
  EXPECT_EQ(events[4].data, status);
}

TEST(StreamDecoder, PortForwardSpdyTunnelledInWebSocket) {
  spdy::HeaderDeflater client_headers;
  // (One statement per block: the deflate context must see them in order.)
  std::string spdy_bytes =
      spdy::SynStream(1, client_headers.Deflate({{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}}));
  spdy_bytes += spdy::SynStream(3, client_headers.Deflate({{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}}));
  spdy_bytes += spdy::DataFrame(3, "GET / HTTP/1.1\r\n\r\n", false);
  // kubectl writes each SPDY frame as one or more binary messages.
  std::string ws;
  for (std::size_t i = 0; i < spdy_bytes.size(); i += 11) ws += ClientFrame(0x82, spdy_bytes.substr(i, 11));
  auto d = MakeSessionDecoder("websocket", "SPDY/3.1+portforward.k8s.io", 1 << 20);
  for (char c : ws) d->FromClient(std::string(1, c));
  EXPECT_FALSE(d->error()) << d->error_message();
  auto events = d->Take();
  EXPECT_EQ(Describe(events), (std::vector<std::string>{"open:error:8080", "open:data:8080", "data:GET / HTTP/1.1\r\n\r\n"}));
  EXPECT_EQ(events[2].request_id, "0");
}

}  // namespace
}  // namespace kubegate
