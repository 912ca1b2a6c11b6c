// WebSocket (RFC 6455) messages of one direction of a connection, read
// from a copy of its bytes in any segmentation: frame headers with 7/16/64
// bit lengths, masking (client frames), fragmented messages with control
// frames in between. For the recording tap: it observes and never writes.
//
//   ws::MessageReader r(limits::kRecordingMaxMessageBytes);
//   r.Feed(bytes);                      // as they pass through the relay
//   while (auto m = r.Next()) { ... }   // complete messages, in order
//
// A message longer than `max_message` is cut there (truncated = true,
// `size` still counts all of it). After a protocol error (an unknown
// opcode, a continuation with no message, a fragmented control frame)
// error() is set and nothing more is returned.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace kubegate::ws {

enum Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

struct Message {
  std::uint8_t opcode = kBinary;  // of the first frame
  std::string payload;            // unmasked; at most max_message bytes
  std::uint64_t size = 0;         // the whole message's length
  bool truncated = false;
};

class MessageReader {
 public:
  explicit MessageReader(std::size_t max_message) : max_message_(max_message) {}

  void Feed(std::string_view bytes);
  std::optional<Message> Next();
  // Data messages that start (after unmasking) with byte `first` and begin
  // after this call keep only that byte: `size` still counts the whole
  // message and `truncated` is set. For payload nobody will read (past a
  // recording's cap): it is then neither copied nor unmasked.
  void KeepOnlyFirstByte(std::uint8_t first) { first_byte_only_[first] = true; }
  bool error() const { return !error_.empty(); }
  const std::string& error_message() const { return error_; }

 private:
  std::size_t Parse(std::string_view in);  // returns the bytes used
  bool ParseHeader(std::string_view in, std::size_t& pos);  // false: more bytes needed (or error)
  void Deliver(std::string_view data);
  void EndFrame();

  const std::size_t max_message_;
  bool first_byte_only_[256] = {};
  std::size_t data_limit_ = 0;  // what the data message being read may keep
  std::string buf_;        // a frame header split across reads
  // The frame being read.
  bool in_frame_ = false;
  bool fin_ = false;
  std::uint8_t opcode_ = 0;
  bool masked_ = false;
  unsigned char mask_[4] = {0, 0, 0, 0};
  std::uint64_t remaining_ = 0;
  std::uint64_t offset_ = 0;  // into the frame's payload, for the mask
  // The data message being assembled, and a control frame in between.
  std::optional<Message> data_;
  std::optional<Message> control_;
  std::deque<Message> ready_;
  std::string error_;
};

}  // namespace kubegate::ws
