// SpdyPodSession: the pod side of an exec, attach or port-forward
// connection over SPDY/3.1, as the kubelet serves it, as a byte-in /
// bytes-out state machine (no sockets). The server feeds it what the
// client sent (raw TCP bytes after the 101, or the payloads of WebSocket
// messages for tunnelled port-forward) and writes back what it returns.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spdy/spdy_frame.h"
#include "tiny_shell.h"

namespace kubegate::testserver {

struct ExecParams {
  std::vector<std::string> command;
  bool stdin_ = false;
  bool stdout_ = true;
  bool stderr_ = false;
  bool tty = false;
};

class SpdyPodSession {
 public:
  // Exec/attach: the shell runs once the expected streams exist.
  // `files` (the pod's) must outlive the session.
  SpdyPodSession(std::string pod, ExecParams exec, PodFiles* files);
  // Port-forward: each data stream is answered as an HTTP server on the
  // requested port would.
  explicit SpdyPodSession(std::string pod);

  std::string Feed(std::string_view bytes);
  std::optional<int> sleeping_ms() const { return shell_ ? shell_->sleeping_ms() : std::nullopt; }
  std::string WakeUp();
  // The client went away (GOAWAY) or sent bytes that are not SPDY.
  bool finished() const { return finished_; }
  // The exec ended and its Status went out on the error stream.
  bool status_sent() const { return status_sent_; }
  std::vector<std::string> seen_resizes() const { return resizes_; }

 private:
  std::string OnFrame(const spdy::Frame& f);
  std::string MaybeStartShell();
  std::string AfterShellOutput(const std::string& out);
  std::string FinishExec();

  std::string pod_;
  PodFiles* files_ = nullptr;
  bool port_forward_ = false;
  ExecParams exec_;
  spdy::FrameReader reader_;
  spdy::HeaderInflater inflater_;
  spdy::HeaderDeflater deflater_;
  std::map<std::string, std::uint32_t> exec_streams_;  // streamtype -> id
  // A stalled kubelet's pod ("stalled-<n>-..."): streams after the n-th get no reply.
  std::optional<std::size_t> stall_after_;
  std::size_t streams_opened_ = 0;
  std::unique_ptr<TinyShell> shell_;
  bool finished_ = false;
  bool status_sent_ = false;
  std::vector<std::string> resizes_;
  struct Forward {
    std::uint32_t error_stream = 0;
    std::uint32_t data_stream = 0;
    std::string port;
    std::string received;
    bool answered = false;
  };
  std::map<std::string, Forward> forwards_;  // by requestid
};

}  // namespace kubegate::testserver
