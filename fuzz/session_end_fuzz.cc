// Fuzz target: SessionEnd, which reads the frames of an upgraded session
// both ways (WebSocket from the server, SPDY from both sides) to end it
// with a Status at a frame boundary. Input: a selector byte (protocol),
// then bytes split between client and server at a second byte.
// Then, as after a notice, the client's bytes once more (SPDY answers the
// streams a client opens after the notice).
// Invariant: no crash, no read out of bounds, no unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/session_end.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* kProtocols[][2] = {{"websocket", "v5.channel.k8s.io"},
                                        {"websocket", "v4.base64.channel.k8s.io"},
                                        {"SPDY/3.1", "v4.channel.k8s.io"}};
  const auto& p = kProtocols[data[0] % 3];
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::size_t cut = rest.empty() ? 0 : data[1] % (rest.size() + 1);
  auto end = kubegate::SessionEnd::For(p[0], p[1]);
  if (!end) __builtin_trap();
  end->FromClient(rest.substr(0, cut));
  end->FromServer(rest.substr(cut));
  (void)end->Notice("session closed by kubegate: fuzz");
  if (end->awaiting_client()) (void)end->AfterNotice(rest.substr(0, cut));
  return 0;
}
