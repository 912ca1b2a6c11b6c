// Fuzz target: SPDY/3.1 frame reassembly and header-block inflation, fed in
// two arbitrary pieces (the split point is the first input byte).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "spdy/spdy_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t split = data[0] % (in.size() + 1);
  kubegate::spdy::FrameReader reader;
  kubegate::spdy::HeaderInflater inflater;
  for (std::string_view piece : {in.substr(0, split), in.substr(split)}) {
    reader.Feed(piece);
    while (auto f = reader.Next()) {
      if (!f->header_block.empty()) (void)inflater.Inflate(f->header_block);
    }
  }
  return 0;
}
