// Fuzz target: WebSocket frames carrying the Kubernetes channel protocol
// (v5.channel.k8s.io), through the decoder and the asciicast recorder.
#include "session_decoder_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kubegate::fuzz::FuzzSession("websocket", "v5.channel.k8s.io", data, size, false);
  kubegate::fuzz::FuzzSession("websocket", "base64.channel.k8s.io", data, size, false);
  return 0;
}
