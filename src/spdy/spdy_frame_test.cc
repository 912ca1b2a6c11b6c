#include "spdy/spdy_frame.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace kubegate::spdy {
namespace {

TEST(SpdyFrame, DictionaryIsTheSpdy3One) {
  ASSERT_EQ(Dictionary().size(), 1423u);
  EXPECT_EQ(Dictionary().substr(0, 11), std::string_view("\0\0\0\7options", 11));
}

TEST(SpdyFrame, HeadersRoundTripAcrossFramesWithSharedContexts) {
  HeaderDeflater out;
  HeaderInflater in;
  Headers a = {{"streamtype", "error"}, {"port", "8080"}, {"requestid", "0"}};
  Headers b = {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}};
  // Deflate in order: both blocks share one compression context.
  std::string block_a = out.Deflate(a);
  std::string block_b = out.Deflate(b);
  std::string wire = SynStream(1, block_a) + SynStream(3, block_b) + DataFrame(3, "hello", true) + Ping(7);
  // Fed one byte at a time: frames come out only when complete.
  FrameReader r;
  std::vector<Frame> frames;
  for (char c : wire) {
    r.Feed(std::string_view(&c, 1));
    while (auto f = r.Next()) frames.push_back(*f);
  }
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_TRUE(frames[0].control);
  EXPECT_EQ(frames[0].type, kSynStream);
  EXPECT_EQ(frames[0].stream_id, 1u);
  EXPECT_EQ(in.Inflate(frames[0].header_block), a);
  EXPECT_EQ(in.Inflate(frames[1].header_block), b);  // needs the context of the first block
  EXPECT_FALSE(frames[2].control);
  EXPECT_EQ(frames[2].stream_id, 3u);
  EXPECT_EQ(frames[2].payload, "hello");
  EXPECT_TRUE(frames[2].fin());
  EXPECT_EQ(frames[3].type, kPing);
}

// What kubegate answers with when it ends a session for the server: a
// block that continues a zlib stream it never compressed.
TEST(SpdyFrame, StoredHeaderBlocksContinueAStreamAtAFlushPoint) {
  HeaderDeflater server;
  HeaderInflater client;
  Headers first = {{"x", "compressed by the server"}};
  ASSERT_EQ(client.Inflate(server.Deflate(first)), first);
  Headers none;
  Headers some = {{"streamtype", "error"}};
  auto a = StoredHeaderBlock(none);
  auto b = StoredHeaderBlock(some);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(client.Inflate(*a), none);
  EXPECT_EQ(client.Inflate(*b), some);
  // Each ends as a SYNC_FLUSH does, with an empty stored block: Go's
  // inflater only hands over a block's bytes once the next one begins.
  EXPECT_EQ(a->substr(a->size() - 5), std::string("\0\0\0\xFF\xFF", 5));
  EXPECT_EQ(a->size(), 5 + 4 + 5u) << "header, a zero header count, the flush";
  EXPECT_FALSE(StoredHeaderBlock({{"big", std::string(70000, 'x')}})) << "one stored block holds < 64 KiB";
}

TEST(SpdyFrame, RejectsWrongVersionAndOversizedFrames) {
  FrameReader wrong_version;
  wrong_version.Feed(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
  EXPECT_FALSE(wrong_version.Next());
  EXPECT_TRUE(wrong_version.error());
  HeaderInflater in;
  EXPECT_FALSE(in.Inflate("not zlib at all"));
}

// Found by spdy_frame_fuzz: a name length near 2^32 wrapped the bounds
// check and read past the inflated block.
TEST(SpdyFrame, HugeHeaderLengthsAreRejected) {
  const unsigned char raw[] = {0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE, 'x'};
  unsigned char packed[64];
  uLongf packed_len = sizeof packed;
  ASSERT_EQ(compress(packed, &packed_len, raw, sizeof raw), Z_OK);
  HeaderInflater in;
  EXPECT_FALSE(in.Inflate(std::string_view(reinterpret_cast<const char*>(packed), packed_len)));
}

}  // namespace
}  // namespace kubegate::spdy
