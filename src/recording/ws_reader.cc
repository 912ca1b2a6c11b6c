#include "recording/ws_reader.h"

#include <cstring>

namespace kubegate::ws {

void MessageReader::Feed(std::string_view bytes) {
  if (error()) return;
  // Payload is delivered straight from `bytes`; only a frame header split
  // across reads (at most 14 bytes) waits in buf_.
  std::string_view in = bytes;
  if (!buf_.empty()) {
    buf_.append(bytes);
    in = buf_;
  }
  std::size_t used = Parse(in);
  std::string rest(in.substr(used));
  buf_ = std::move(rest);
}

std::optional<Message> MessageReader::Next() {
  if (ready_.empty()) return std::nullopt;
  Message m = std::move(ready_.front());
  ready_.pop_front();
  return m;
}

bool MessageReader::ParseHeader(std::string_view in, std::size_t& pos) {
  std::size_t avail = in.size() - pos;
  if (avail < 2) return false;
  auto b = reinterpret_cast<const unsigned char*>(in.data() + pos);
  std::size_t need = 2;
  std::uint64_t len = b[1] & 0x7F;
  if (len == 126) need += 2;
  if (len == 127) need += 8;
  bool masked = b[1] & 0x80;
  if (masked) need += 4;
  if (avail < need) return false;
  std::size_t at = 2;
  if (len == 126) {
    len = (std::uint64_t{b[2]} << 8) | b[3];
    at = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
    at = 10;
    if (len >> 63) {
      error_ = "a 64-bit frame length with the top bit set";
      return false;
    }
  }
  fin_ = b[0] & 0x80;
  opcode_ = b[0] & 0x0F;
  masked_ = masked;
  if (masked) {
    for (int i = 0; i < 4; ++i) mask_[i] = b[at + i];
  }
  remaining_ = len;
  offset_ = 0;
  pos += need;
  const bool control = opcode_ & 0x8;
  if (control) {
    if (opcode_ != kClose && opcode_ != kPing && opcode_ != kPong) {
      error_ = "unknown control opcode " + std::to_string(opcode_);
      return false;
    }
    if (!fin_ || len > 125) {
      error_ = "a fragmented or oversized control frame";
      return false;
    }
    control_ = Message{opcode_, {}, len, false};
  } else if (opcode_ == kContinuation) {
    if (!data_) {
      error_ = "a continuation frame without a message";
      return false;
    }
  } else if (opcode_ == kText || opcode_ == kBinary) {
    if (data_) {
      error_ = "a new message before the last one ended";
      return false;
    }
    data_ = Message{opcode_, {}, 0, false};
  } else {
    error_ = "unknown opcode " + std::to_string(opcode_);
    return false;
  }
  in_frame_ = true;
  return true;
}

void MessageReader::Deliver(std::string_view data) {
  Message& m = control_ ? *control_ : *data_;
  std::size_t limit = max_message_;
  if (!control_) {
    if (m.size == 0 && !data.empty()) {
      // A data message's first byte decides how much of it is kept.
      unsigned char first = static_cast<unsigned char>(data[0]);
      if (masked_) first ^= mask_[offset_ & 3];
      data_limit_ = first_byte_only_[first] ? 1 : max_message_;
      // One allocation for a message in one frame, not one per doubling.
      if (fin_) m.payload.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(data_limit_, remaining_)));
    }
    m.size += data.size();
    limit = data_limit_;
  }
  std::size_t room = m.payload.size() < limit ? limit - m.payload.size() : 0;
  std::size_t keep = std::min(room, data.size());
  std::size_t start = m.payload.size();
  m.payload.append(data.substr(0, keep));
  if (keep < data.size()) m.truncated = true;
  if (masked_ && keep) {
    // Unmask eight bytes at a time with the key rotated to this offset.
    unsigned char key[8];
    for (int i = 0; i < 8; ++i) key[i] = mask_[(offset_ + i) & 3];
    std::uint64_t word;
    std::memcpy(&word, key, 8);
    char* p = m.payload.data() + start;
    std::size_t i = 0;
    for (; i + 8 <= keep; i += 8) {
      std::uint64_t v;
      std::memcpy(&v, p + i, 8);
      v ^= word;
      std::memcpy(p + i, &v, 8);
    }
    for (; i < keep; ++i) p[i] ^= static_cast<char>(key[i & 7]);
  }
  offset_ += data.size();
}

void MessageReader::EndFrame() {
  in_frame_ = false;
  if (control_) {
    ready_.push_back(std::move(*control_));
    control_.reset();
    return;
  }
  if (fin_) {
    ready_.push_back(std::move(*data_));
    data_.reset();
  }
}

std::size_t MessageReader::Parse(std::string_view in) {
  std::size_t pos = 0;
  while (!error()) {
    if (!in_frame_ && !ParseHeader(in, pos)) return pos;
    std::size_t avail = in.size() - pos;
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, avail));
    if (take) {
      Deliver(in.substr(pos, take));
      pos += take;
      remaining_ -= take;
    }
    if (remaining_ > 0) return pos;
    EndFrame();
  }
  return in.size();  // after an error nothing more is read
}

}  // namespace kubegate::ws
