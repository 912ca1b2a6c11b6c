// Fuzz target: SPDY/3.1 exec and port-forward streams, directly and
// tunnelled in WebSocket messages, through the decoder and the recorder.
#include "session_decoder_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kubegate::fuzz::FuzzSession("SPDY/3.1", "v5.channel.k8s.io", data, size, false);
  kubegate::fuzz::FuzzSession("SPDY/3.1", "portforward.k8s.io", data, size, true);
  kubegate::fuzz::FuzzSession("websocket", "SPDY/3.1+portforward.k8s.io", data, size, true);
  return 0;
}
