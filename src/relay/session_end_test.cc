#include "relay/session_end.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "recording/stream_decoder.h"
#include "spdy/spdy_frame.h"

namespace kubegate {
namespace {

std::string WsServerFrame(char channel, const std::string& data) {
  std::string payload = std::string(1, channel) + data;
  return std::string(1, '\x82') + static_cast<char>(payload.size()) + payload;
}

// Reads the notice back as a client would: the session decoder used for
// recordings sees a Failure Status on the error channel.
std::string ErrorChannelOf(SessionDecoder& d, const std::string& server_bytes) {
  d.FromServer(server_bytes);
  std::string error;
  for (const auto& e : d.Take()) {
    if (e.kind == StreamEvent::Kind::kData && !e.from_client && e.channel == "error") error += e.data;
  }
  return error;
}

TEST(SessionEnd, WebSocketEndsWithAStatusOnTheErrorChannelThenClose) {
  auto end = SessionEnd::For("websocket", "v5.channel.k8s.io");
  ASSERT_TRUE(end);
  auto decoder = MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20);
  std::string before = WsServerFrame('\x01', "hello");
  end->FromServer(before);
  std::string notice = end->Notice("session closed by kubegate: grant gr-1 expired");
  ASSERT_FALSE(notice.empty());
  EXPECT_EQ(notice.substr(notice.size() - 4), std::string("\x88\x02\x03\xE8", 4)) << "a close frame (1000) last";
  std::string error = ErrorChannelOf(*decoder, before + notice);
  auto status = nlohmann::json::parse(error, nullptr, false);
  ASSERT_TRUE(status.is_object()) << error;
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["message"], "session closed by kubegate: grant gr-1 expired");
}

TEST(SessionEnd, AFrameCutByTheRelayIsCompletedBeforeTheNotice) {
  auto end = SessionEnd::For("websocket", "v4.channel.k8s.io");
  auto decoder = MakeSessionDecoder("websocket", "v4.channel.k8s.io", 1 << 20);
  std::string frame = WsServerFrame('\x01', "hello");
  std::string cut = frame.substr(0, frame.size() - 3);
  end->FromServer(cut);
  std::string notice = end->Notice("ended");
  ASSERT_FALSE(notice.empty());
  EXPECT_EQ(notice.substr(0, 3), std::string(3, '\0')) << "the rest of the cut frame";
  EXPECT_NE(ErrorChannelOf(*decoder, cut + notice).find("\"ended\""), std::string::npos);
  // Inside a header nothing can be added safely.
  auto in_header = SessionEnd::For("websocket", "v5.channel.k8s.io");
  in_header->FromServer(frame.substr(0, 1));
  EXPECT_EQ(in_header->Notice("ended"), "");
}

// Found by session_end_fuzz: a frame header claiming 2^40 bytes once made
// Notice allocate that much padding. Past 1 MiB no notice is sent.
TEST(SessionEnd, AHugeCutFrameGetsNoNoticeInsteadOfHugePadding) {
  auto end = SessionEnd::For("websocket", "v5.channel.k8s.io");
  end->FromServer(std::string("\x82\x7f\x00\x00\x00\xff\x00\x00\x00\x00", 10));
  EXPECT_EQ(end->Notice("ended"), "");
}

TEST(SessionEnd, Base64ProtocolsGetATextMessage) {
  auto end = SessionEnd::For("websocket", "v4.base64.channel.k8s.io");
  ASSERT_TRUE(end);
  auto decoder = MakeSessionDecoder("websocket", "v4.base64.channel.k8s.io", 1 << 20);
  EXPECT_NE(ErrorChannelOf(*decoder, end->Notice("ended")).find("\"Failure\""), std::string::npos);
}

// What a SPDY client makes of the bytes kubegate writes: frames, with each
// reply's headers read through the client's one inflate context.
struct SpdyClientView {
  spdy::FrameReader reader;
  spdy::HeaderInflater headers;
  std::vector<spdy::Frame> frames;
  bool headers_ok = true;

  void Read(const std::string& bytes) {
    reader.Feed(bytes);
    while (auto f = reader.Next()) {
      if (f->control && f->type == spdy::kSynReply && !headers.Inflate(f->header_block)) headers_ok = false;
      frames.push_back(*f);
    }
  }
  bool Replied(std::uint32_t id, bool fin) const {
    for (const auto& f : frames) {
      if (f.control && f.type == spdy::kSynReply && f.stream_id == id) return f.fin() == fin;
    }
    return false;
  }
  bool Finished(std::uint32_t id) const {
    for (const auto& f : frames) {
      if (f.stream_id == id && f.fin() && (!f.control || f.type == spdy::kSynReply)) return true;
    }
    return false;
  }
  std::string Data(std::uint32_t id) const {
    std::string d;
    for (const auto& f : frames) {
      if (!f.control && f.stream_id == id) d += f.payload;
    }
    return d;
  }
};

TEST(SessionEnd, SpdyUsesTheErrorStreamTheClientOpened) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  ASSERT_TRUE(end);
  spdy::HeaderDeflater client;  // one context: blocks deflated in order
  std::string syn = spdy::SynStream(1, client.Deflate({{"streamtype", "error"}}));
  syn += spdy::SynStream(3, client.Deflate({{"streamtype", "stdout"}}));
  end->FromClient(syn);
  spdy::HeaderDeflater server;
  std::string replies = spdy::SynReply(1, server.Deflate({}));
  replies += spdy::SynReply(3, server.Deflate({}));
  std::string data = spdy::DataFrame(3, "output", false);
  end->FromServer(replies + data.substr(0, data.size() - 2));  // cut inside a data frame
  std::string notice = end->Notice("session closed by kubegate: grant gr-2 revoked");
  ASSERT_FALSE(notice.empty());
  EXPECT_TRUE(end->told());
  EXPECT_EQ(notice.substr(0, 2), std::string(2, '\0'));
  auto decoder = MakeSessionDecoder("SPDY/3.1", "v4.channel.k8s.io", 1 << 20);
  decoder->FromClient(syn);
  std::string error = ErrorChannelOf(*decoder, replies + data.substr(0, data.size() - 2) + notice);
  EXPECT_NE(error.find("grant gr-2 revoked"), std::string::npos) << error;
  // Stdout ends too: kubectl reports the error stream only after its
  // output streams end.
  SpdyClientView view;
  view.Read(replies + data.substr(0, data.size() - 2) + notice);
  EXPECT_TRUE(view.Finished(3));
  EXPECT_TRUE(view.Finished(1));
}

// The race seen with kubectl 1.29: the session ends while kubectl is still
// opening its streams, each only after the reply to the one before. Each
// gets a reply whose headers continue the server's zlib stream; later
// ones get theirs after the notice; every stream ends.
TEST(SessionEnd, SpdyAnswersTheStreamsTheServerLeftWaiting) {
  auto end = SessionEnd::For("SPDY/3.1", "v5.channel.k8s.io");
  spdy::HeaderDeflater client;
  spdy::HeaderDeflater server;
  SpdyClientView view;
  std::string s1 = spdy::SynStream(1, client.Deflate({{"streamtype", "error"}}));
  end->FromClient(s1);
  std::string r1 = spdy::SynReply(1, server.Deflate({{"x", "y"}}));
  end->FromServer(r1);
  view.Read(r1);
  end->FromClient(spdy::SynStream(3, client.Deflate({{"streamtype", "stdout"}})));
  // No reply to 3: the session ends here.
  std::string notice = end->Notice("revoked");
  view.Read(notice);
  EXPECT_TRUE(view.Replied(3, /*fin=*/true));
  EXPECT_NE(view.Data(1).find("revoked"), std::string::npos);
  EXPECT_TRUE(end->awaiting_client());
  // kubectl goes on: stderr, then it hangs up.
  std::string later = end->AfterNotice(spdy::SynStream(5, client.Deflate({{"streamtype", "stderr"}})));
  view.Read(later);
  EXPECT_TRUE(view.Replied(5, /*fin=*/true));
  EXPECT_TRUE(view.headers_ok) << "every reply's headers read in the server's zlib stream";
  EXPECT_EQ(end->AfterNotice(spdy::RstStream(5, 5)), "") << "nothing is owed for a reset";
  EXPECT_EQ(view.Data(1).find("revoked"), view.Data(1).rfind("revoked")) << "the Status goes out once";
}

// Ended before the server sent any header block: kubegate begins the zlib
// stream itself (header, dictionary id), and continues its own stream.
TEST(SessionEnd, SpdyBeginsTheHeaderStreamWhenTheServerSentNone) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  spdy::HeaderDeflater client;
  end->FromClient(spdy::SynStream(1, client.Deflate({{"streamtype", "error"}})));
  SpdyClientView view;
  view.Read(end->Notice("ended"));
  EXPECT_TRUE(view.Replied(1, /*fin=*/false));
  EXPECT_EQ(nlohmann::json::parse(view.Data(1), nullptr, false)["message"], "ended");
  view.Read(end->AfterNotice(spdy::SynStream(3, client.Deflate({{"streamtype", "stdout"}}))));
  EXPECT_TRUE(view.Replied(3, /*fin=*/true));
  EXPECT_TRUE(view.headers_ok);
}

// Nothing opened yet: nothing to write, but the error stream, when it
// comes, gets the Status.
TEST(SessionEnd, SpdyEndedBeforeAnyStreamTellsTheErrorStreamWhenItOpens) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  EXPECT_EQ(end->Notice("ended"), "");
  EXPECT_FALSE(end->told());
  ASSERT_TRUE(end->awaiting_client());
  spdy::HeaderDeflater client;
  SpdyClientView view;
  view.Read(end->AfterNotice(spdy::SynStream(1, client.Deflate({{"streamtype", "error"}}))));
  EXPECT_TRUE(end->told());
  EXPECT_NE(view.Data(1).find("ended"), std::string::npos);
}

// A server control frame cut by the relay cannot be completed (its header
// block would break the client's zlib stream): no notice, no waiting.
TEST(SessionEnd, SpdyCutInsideAControlFrameSendsNothing) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  spdy::HeaderDeflater client, server;
  end->FromClient(spdy::SynStream(1, client.Deflate({{"streamtype", "error"}})));
  std::string reply = spdy::SynReply(1, server.Deflate({}));
  end->FromServer(reply.substr(0, reply.size() - 1));
  EXPECT_EQ(end->Notice("ended"), "");
  EXPECT_FALSE(end->awaiting_client());
}

// A client that opens stream after stream is not answered without end.
TEST(SessionEnd, SpdyStopsAnsweringPastTheStreamLimit) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  spdy::HeaderDeflater client;
  end->Notice("ended");
  std::size_t replies = 0;
  for (std::uint32_t id = 1; id < 200 && end->awaiting_client(); id += 2) {
    SpdyClientView view;
    view.Read(end->AfterNotice(spdy::SynStream(id, client.Deflate({{"streamtype", "stdout"}}))));
    replies += view.frames.size();
  }
  EXPECT_FALSE(end->awaiting_client());
  EXPECT_LE(replies, 16u);
}

TEST(SessionEnd, PortForwardHasNoErrorChannelToUse) {
  EXPECT_FALSE(SessionEnd::For("websocket", "SPDY/3.1+portforward.k8s.io"));
  EXPECT_FALSE(SessionEnd::For("SPDY/3.1", "portforward.k8s.io"));
  EXPECT_FALSE(SessionEnd::For("h2c", "v5.channel.k8s.io"));
}

}  // namespace
}  // namespace kubegate
