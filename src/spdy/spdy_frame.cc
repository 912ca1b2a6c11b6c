#include "spdy/spdy_frame.h"

#include <zlib.h>

#include <cstring>

namespace kubegate::spdy {
namespace {

const unsigned char kDictionary[] = {
#include "spdy_dictionary.inc"
};

std::uint32_t Be32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

void Put32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

std::string ControlFrame(std::uint16_t type, std::uint8_t flags, const std::string& body) {
  std::string f;
  f.push_back(static_cast<char>(0x80));
  f.push_back(static_cast<char>(0x03));
  f.push_back(static_cast<char>(type >> 8));
  f.push_back(static_cast<char>(type));
  Put32(f, (std::uint32_t{flags} << 24) | static_cast<std::uint32_t>(body.size()));
  return f + body;
}

}  // namespace

std::uint32_t StreamIdAt(const char* p) { return Be32(p) & 0x7FFFFFFF; }

std::string_view Dictionary() { return {reinterpret_cast<const char*>(kDictionary), sizeof kDictionary}; }

std::optional<Frame> FrameReader::Next() {
  if (error_) return std::nullopt;
  if (buf_.size() - pos_ < 8) return std::nullopt;
  const char* h = buf_.data() + pos_;
  std::uint32_t word1 = Be32(h);
  std::uint32_t word2 = Be32(h + 4);
  std::size_t len = word2 & 0xFFFFFF;
  if (len > kMaxFramePayload) {
    error_ = true;
    return std::nullopt;
  }
  if (buf_.size() - pos_ < 8 + len) return std::nullopt;
  Frame f;
  f.flags = static_cast<std::uint8_t>(word2 >> 24);
  std::string body = buf_.substr(pos_ + 8, len);
  pos_ += 8 + len;
  if (pos_ > 64 * 1024) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (word1 & 0x80000000u) {
    f.control = true;
    if (((word1 >> 16) & 0x7FFF) != 3) {
      error_ = true;
      return std::nullopt;
    }
    f.type = static_cast<std::uint16_t>(word1 & 0xFFFF);
    switch (f.type) {
      case kSynStream:
        if (body.size() < 10) break;
        f.stream_id = StreamIdAt(body.data());
        f.header_block = body.substr(10);
        break;
      case kSynReply:
      case kHeaders:
        if (body.size() < 4) break;
        f.stream_id = StreamIdAt(body.data());
        f.header_block = body.substr(4);
        break;
      case kRstStream:
      case kWindowUpdate:
        if (body.size() >= 4) f.stream_id = StreamIdAt(body.data());
        break;
      default:
        break;
    }
    f.payload = std::move(body);
  } else {
    f.stream_id = word1 & 0x7FFFFFFF;
    f.payload = std::move(body);
  }
  return f;
}

struct HeaderInflater::Impl {
  z_stream z{};
  bool ok = true;
};

HeaderInflater::HeaderInflater() : impl_(std::make_unique<Impl>()) {
  impl_->ok = inflateInit(&impl_->z) == Z_OK;
}

HeaderInflater::~HeaderInflater() { inflateEnd(&impl_->z); }

std::optional<Headers> HeaderInflater::Inflate(std::string_view block) {
  if (!impl_->ok) return std::nullopt;
  z_stream& z = impl_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  std::string out;
  char chunk[4096];
  while (z.avail_in > 0) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(Dictionary().data()),
                               static_cast<uInt>(Dictionary().size())) != Z_OK) {
        impl_->ok = false;
        return std::nullopt;
      }
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      impl_->ok = false;
      return std::nullopt;
    }
    out.append(chunk, sizeof chunk - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_out != 0) break;
    if (out.size() > kMaxFramePayload) return std::nullopt;
  }
  Headers headers;
  if (out.size() < 4) return std::nullopt;
  std::uint32_t n = Be32(out.data());
  std::size_t at = 4;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (out.size() - at < 4) return std::nullopt;
    // Lengths are attacker-chosen 32-bit values: compare in size_t, so
    // that nl + 4 cannot wrap.
    std::size_t nl = Be32(out.data() + at);
    at += 4;
    if (out.size() - at < nl + 4) return std::nullopt;
    std::string name = out.substr(at, nl);
    at += nl;
    std::size_t vl = Be32(out.data() + at);
    at += 4;
    if (out.size() - at < vl) return std::nullopt;
    headers.emplace_back(std::move(name), out.substr(at, vl));
    at += vl;
  }
  return headers;
}

struct HeaderDeflater::Impl {
  z_stream z{};
};

HeaderDeflater::HeaderDeflater() : impl_(std::make_unique<Impl>()) {
  deflateInit(&impl_->z, Z_DEFAULT_COMPRESSION);
  deflateSetDictionary(&impl_->z, reinterpret_cast<const Bytef*>(Dictionary().data()),
                       static_cast<uInt>(Dictionary().size()));
}

HeaderDeflater::~HeaderDeflater() { deflateEnd(&impl_->z); }

namespace {

// The name/value block before compression (SPDY/3 §2.6.10).
std::string RawHeaderBlock(const Headers& headers) {
  std::string raw;
  Put32(raw, static_cast<std::uint32_t>(headers.size()));
  for (const auto& [n, v] : headers) {
    Put32(raw, static_cast<std::uint32_t>(n.size()));
    raw += n;
    Put32(raw, static_cast<std::uint32_t>(v.size()));
    raw += v;
  }
  return raw;
}

}  // namespace

std::string HeaderDeflater::Deflate(const Headers& headers) {
  std::string raw = RawHeaderBlock(headers);
  z_stream& z = impl_->z;
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  char chunk[4096];
  do {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    deflate(&z, Z_SYNC_FLUSH);
    out.append(chunk, sizeof chunk - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

std::optional<std::string> StoredHeaderBlock(const Headers& headers) {
  std::string raw = RawHeaderBlock(headers);
  // One stored block (RFC 1951 §3.2.4): BFINAL 0 and BTYPE 00 in a byte of
  // its own, LEN and its one's complement NLEN little-endian, the bytes.
  constexpr std::size_t kMaxStored = 0xFFFF;
  if (raw.size() > kMaxStored) return std::nullopt;
  const auto len = static_cast<std::uint16_t>(raw.size());
  const auto nlen = static_cast<std::uint16_t>(~len);
  std::string out(1, '\0');
  out.push_back(static_cast<char>(len & 0xFF));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(nlen & 0xFF));
  out.push_back(static_cast<char>(nlen >> 8));
  out += raw;
  // Then what a SYNC_FLUSH writes, an empty stored block. Go's inflater
  // hands a block's bytes to its reader only when the next block begins;
  // without one it reports an unexpected EOF, and keeps reporting it for
  // every later header block of the connection.
  return out + std::string("\0\0\0\xFF\xFF", 5);
}

std::string DataFrame(std::uint32_t stream_id, std::string_view data, bool fin) {
  std::string f;
  Put32(f, stream_id & 0x7FFFFFFF);
  Put32(f, (std::uint32_t{fin ? kFlagFin : std::uint8_t{0}} << 24) | static_cast<std::uint32_t>(data.size()));
  f.append(data);
  return f;
}

std::string SynReply(std::uint32_t stream_id, const std::string& header_block, bool fin) {
  std::string body;
  Put32(body, stream_id);
  return ControlFrame(kSynReply, fin ? kFlagFin : 0, body + header_block);
}

std::string SynStream(std::uint32_t stream_id, const std::string& header_block, bool fin) {
  std::string body;
  Put32(body, stream_id);
  Put32(body, 0);
  body.push_back(0);
  body.push_back(0);
  return ControlFrame(kSynStream, fin ? kFlagFin : 0, body + header_block);
}

std::string Ping(std::uint32_t id) {
  std::string body;
  Put32(body, id);
  return ControlFrame(kPing, 0, body);
}

std::string RstStream(std::uint32_t stream_id, std::uint32_t status) {
  std::string body;
  Put32(body, stream_id);
  Put32(body, status);
  return ControlFrame(kRstStream, 0, body);
}

std::string GoAway(std::uint32_t last_good_stream) {
  std::string body;
  Put32(body, last_good_stream);
  Put32(body, 0);
  return ControlFrame(kGoAway, 0, body);
}

}  // namespace kubegate::spdy
