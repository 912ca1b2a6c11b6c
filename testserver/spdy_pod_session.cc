#include "spdy_pod_session.h"

#include <nlohmann/json.hpp>

namespace kubegate::testserver {

namespace {

// A pod named "stalled-<n>-..." stands for a kubelet that hangs: its first
// n streams are answered and no later one, so kubectl waits for a SYN_REPLY
// (tests of how kubegate ends a session in the middle of stream set-up).
std::optional<std::size_t> StreamsAnsweredBeforeStall(const std::string& pod) {
  static constexpr std::string_view kPrefix = "stalled-";
  if (pod.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::size_t n = 0, at = kPrefix.size();
  for (; at < pod.size() && pod[at] >= '0' && pod[at] <= '9'; ++at) n = n * 10 + (pod[at] - '0');
  return n;
}

}  // namespace

SpdyPodSession::SpdyPodSession(std::string pod, ExecParams exec, PodFiles* files)
    : pod_(std::move(pod)), files_(files), exec_(std::move(exec)), stall_after_(StreamsAnsweredBeforeStall(pod_)) {}

SpdyPodSession::SpdyPodSession(std::string pod) : pod_(std::move(pod)), port_forward_(true) {}

std::string SpdyPodSession::Feed(std::string_view bytes) {
  reader_.Feed(bytes);
  std::string out;
  while (auto f = reader_.Next()) out += OnFrame(*f);
  if (reader_.error()) finished_ = true;
  return out;
}

std::string SpdyPodSession::OnFrame(const spdy::Frame& f) {
  std::string out;
  if (f.control) {
    switch (f.type) {
      case spdy::kSynStream: {
        auto headers = inflater_.Inflate(f.header_block);
        if (!headers) {
          finished_ = true;
          return "";
        }
        std::map<std::string, std::string> h(headers->begin(), headers->end());
        if (stall_after_ && streams_opened_++ >= *stall_after_) return "";
        out += spdy::SynReply(f.stream_id, deflater_.Deflate({}));
        if (port_forward_) {
          Forward& fw = forwards_[h["requestid"]];
          fw.port = h["port"];
          (h["streamtype"] == "error" ? fw.error_stream : fw.data_stream) = f.stream_id;
        } else {
          exec_streams_[h["streamtype"]] = f.stream_id;
          out += MaybeStartShell();
        }
        return out;
      }
      case spdy::kPing:
        return f.payload.size() == 4 ? spdy::Ping(static_cast<std::uint32_t>(
                                           (static_cast<unsigned char>(f.payload[0]) << 24) |
                                           (static_cast<unsigned char>(f.payload[1]) << 16) |
                                           (static_cast<unsigned char>(f.payload[2]) << 8) |
                                           static_cast<unsigned char>(f.payload[3])))
                                     : "";
      case spdy::kGoAway:
        finished_ = true;
        return "";
      default:
        return "";
    }
  }
  if (port_forward_) {
    for (auto& [id, fw] : forwards_) {
      if (fw.data_stream != f.stream_id || fw.answered) continue;
      fw.received += f.payload;
      if (fw.received.find("\r\n\r\n") != std::string::npos || f.fin()) {
        std::string body = "hello from " + pod_ + " port " + fw.port + "\n";
        std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        fw.answered = true;
        out += spdy::DataFrame(fw.data_stream, resp, true);
        if (fw.error_stream) out += spdy::DataFrame(fw.error_stream, "", true);
      }
    }
    return out;
  }
  auto id_of = [&](const char* type) {
    auto it = exec_streams_.find(type);
    return it == exec_streams_.end() ? 0u : it->second;
  };
  if (f.stream_id == id_of("resize")) {
    resizes_.push_back(f.payload);
    return "";
  }
  if (f.stream_id == id_of("stdin") && shell_) {
    std::string o = shell_->Input(f.payload);
    if (f.fin()) o += shell_->CloseStdin();
    return AfterShellOutput(o);
  }
  return "";
}

std::string SpdyPodSession::MaybeStartShell() {
  if (shell_) return "";
  bool ready = exec_streams_.count("error") && (!exec_.stdin_ || exec_streams_.count("stdin")) &&
               (!exec_.stdout_ || exec_streams_.count("stdout")) &&
               (!exec_.stderr_ || exec_.tty || exec_streams_.count("stderr")) &&
               (!exec_.tty || exec_streams_.count("resize"));
  if (!ready) return "";
  shell_ = std::make_unique<TinyShell>(exec_.command, exec_.tty, files_);
  return AfterShellOutput(shell_->Start());
}

std::string SpdyPodSession::AfterShellOutput(const std::string& o) {
  std::string out;
  if (!o.empty() && exec_streams_.count("stdout")) out += spdy::DataFrame(exec_streams_["stdout"], o, false);
  if (shell_->done()) out += FinishExec();
  return out;
}

std::string SpdyPodSession::WakeUp() {
  if (!shell_) return "";
  return AfterShellOutput(shell_->WakeUp());
}

std::string SpdyPodSession::FinishExec() {
  if (status_sent_) return "";
  status_sent_ = true;
  std::string out;
  if (exec_streams_.count("stdout")) out += spdy::DataFrame(exec_streams_["stdout"], "", true);
  if (exec_streams_.count("stderr")) out += spdy::DataFrame(exec_streams_["stderr"], "", true);
  int code = shell_->exit_code();
  nlohmann::json status = code == 0 ? nlohmann::json{{"metadata", nlohmann::json::object()}, {"status", "Success"}}
                                    : nlohmann::json{{"metadata", nlohmann::json::object()},
                                                     {"status", "Failure"},
                                                     {"message", "command terminated with non-zero exit code: exit status " +
                                                                     std::to_string(code)},
                                                     {"reason", "NonZeroExitCode"},
                                                     {"details", {{"causes", {{{"reason", "ExitCode"},
                                                                               {"message", std::to_string(code)}}}}}}};
  out += spdy::DataFrame(exec_streams_["error"], status.dump(), true);
  return out;
}

}  // namespace kubegate::testserver
