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

TEST(SessionEnd, SpdyUsesTheErrorStreamTheClientOpened) {
  auto end = SessionEnd::For("SPDY/3.1", "v4.channel.k8s.io");
  ASSERT_TRUE(end);
  EXPECT_EQ(end->Notice("ended"), "") << "no error stream yet";
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
  EXPECT_EQ(notice.substr(0, 2), std::string(2, '\0'));
  auto decoder = MakeSessionDecoder("SPDY/3.1", "v4.channel.k8s.io", 1 << 20);
  decoder->FromClient(syn);
  std::string error = ErrorChannelOf(*decoder, replies + data.substr(0, data.size() - 2) + notice);
  EXPECT_NE(error.find("grant gr-2 revoked"), std::string::npos) << error;
}

TEST(SessionEnd, PortForwardHasNoErrorChannelToUse) {
  EXPECT_FALSE(SessionEnd::For("websocket", "SPDY/3.1+portforward.k8s.io"));
  EXPECT_FALSE(SessionEnd::For("SPDY/3.1", "portforward.k8s.io"));
  EXPECT_FALSE(SessionEnd::For("h2c", "v5.channel.k8s.io"));
}

}  // namespace
}  // namespace kubegate
