#include "recording/session_recording.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/clock.h"
#include "common/json_fields.h"
#include "common/text.h"

namespace kubegate {
namespace {

// The error channel's text kept for the exit status.
constexpr std::size_t kMaxErrorChannelBytes = 64 * 1024;

class FileSink final : public RecordingSink {
 public:
  explicit FileSink(std::FILE* f) : f_(f) { std::setvbuf(f_, nullptr, _IOFBF, 64 * 1024); }
  ~FileSink() override {
    if (f_) std::fclose(f_);
  }
  bool Write(std::string_view b) override { return f_ && std::fwrite(b.data(), 1, b.size(), f_) == b.size(); }
  bool Close() override {
    if (!f_) return false;
    bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0;
    ok = std::fclose(f_) == 0 && ok;
    f_ = nullptr;
    return ok;
  }

 private:
  std::FILE* f_;
};

// The length of the longest prefix of `s` that does not end inside a UTF-8
// sequence (at most 3 bytes are held back).
std::size_t CompleteUtf8Prefix(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

std::string Seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return buf;
}

std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace

Result<std::unique_ptr<RecordingSink>> CreateRecordingFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error::Unavailable("cannot create recording " + path + ": " + std::strerror(errno));
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    ::close(fd);
    return Error::Unavailable("cannot open recording " + path);
  }
  return std::unique_ptr<RecordingSink>(new FileSink(f));
}

const char* StdinModeName(StdinMode m) {
  switch (m) {
    case StdinMode::kRecord: return "recorded";
    case StdinMode::kOmit: return "omitted";
    case StdinMode::kRedact: return "redacted";
  }
  return "recorded";
}

nlohmann::json RecordingSummary::ToJson() const {
  nlohmann::json j = {{"format", format},           {"sha256", sha256},         {"file_bytes", file_bytes},
                      {"stdin_bytes", stdin_bytes}, {"stdout_bytes", stdout_bytes}, {"stderr_bytes", stderr_bytes},
                      {"stdin", StdinModeName(stdin_mode)}, {"truncated", truncated}, {"resizes", resizes}};
  if (exit_code) j["exit_code"] = *exit_code;
  if (!exit_message.empty()) j["exit_message"] = exit_message;
  if (!connections.empty()) {
    nlohmann::json cs = nlohmann::json::array();
    for (const auto& c : connections) {
      cs.push_back({{"request_id", c.request_id}, {"port", c.port}, {"opened", FormatRfc3339Millis(c.opened_ms)},
                    {"closed", FormatRfc3339Millis(c.closed_ms)}, {"bytes_to_pod", c.bytes_to_pod},
                    {"bytes_from_pod", c.bytes_from_pod}, {"error", c.error}});
    }
    j["connections"] = cs;
  }
  if (dropped_bytes) j["dropped_bytes"] = dropped_bytes;
  if (!decoder_error.empty()) j["decoder_error"] = decoder_error;
  if (!write_error.empty()) j["write_error"] = write_error;
  if (!ended_by.empty()) j["ended_by"] = ended_by;
  return j;
}

SessionRecorder::SessionRecorder(std::unique_ptr<RecordingSink> sink, RecordingHeader header, RecordingOptions options,
                                 std::unique_ptr<SessionDecoder> decoder)
    : sink_(std::move(sink)), header_(std::move(header)), options_(options), decoder_(std::move(decoder)) {
  summary_.format = header_.kind == "portforward" ? "kubegate-portforward-v1" : "asciicast-v2";
  summary_.stdin_mode = options_.stdin_mode;
  // A terminal's size arrives in its first resize message, which may come
  // after the first output: the header waits for it, briefly.
  holding_ = header_.tty && header_.kind != "portforward";
  if (header_.kind == "portforward") WriteHeaderOnce();
}

SessionRecorder::~SessionRecorder() = default;

void SessionRecorder::FromClient(std::string_view bytes, std::int64_t now_ms) {
  if (!decoder_) NoteDecoderError("the session's stream protocol is not one kubegate reads");
  if (finished_ || !decoder_ || decoder_->error()) return;
  decoder_->FromClient(bytes);
  Drain(now_ms);
}

void SessionRecorder::FromServer(std::string_view bytes, std::int64_t now_ms) {
  if (!decoder_) NoteDecoderError("the session's stream protocol is not one kubegate reads");
  if (finished_ || !decoder_ || decoder_->error()) return;
  decoder_->FromServer(bytes);
  Drain(now_ms);
}

void SessionRecorder::Drain(std::int64_t now_ms) {
  for (const StreamEvent& e : decoder_->Take()) Add(e, now_ms);
  if (decoder_->error() && summary_.decoder_error.empty()) summary_.decoder_error = decoder_->error_message();
}

void SessionRecorder::WriteLine(const std::string& line) {
  if (failed() || !sink_) return;
  if (!sink_->Write(line) || !sink_->Write("\n")) {
    summary_.write_error = "writing the recording failed";
    return;
  }
  sha_.Update(line);
  sha_.Update("\n");
  summary_.file_bytes += line.size() + 1;
}

void SessionRecorder::WriteHeaderOnce() {
  if (header_written_) return;
  header_written_ = true;
  nlohmann::json k = {{"request_id", header_.request_id}, {"kind", header_.kind},   {"user", header_.user},
                      {"namespace", header_.namespace_},   {"pod", header_.pod},     {"container", header_.container},
                      {"command", header_.command},        {"tty", header_.tty},     {"approval_id", header_.approval_id},
                      {"grant_id", header_.grant_id},      {"stdin", StdinModeName(options_.stdin_mode)}};
  std::string cmd;
  for (const auto& a : header_.command) cmd += (cmd.empty() ? "" : " ") + a;
  std::string title = header_.user + ": kubectl " + header_.kind + " " + header_.namespace_ + "/" + header_.pod +
                      (cmd.empty() ? "" : " -- " + cmd) + " (" + header_.request_id + ")";
  nlohmann::json h;
  if (header_.kind == "portforward") {
    h = {{"kubegate_recording", "portforward/v1"}, {"timestamp", header_.start_ms / 1000}, {"title", title}};
  } else {
    h = {{"version", 2}, {"width", width_}, {"height", height_}, {"timestamp", header_.start_ms / 1000},
         {"title", title}, {"env", {{"TERM", header_.tty ? "xterm-256color" : "dumb"}}}};
  }
  h["kubegate"] = k;
  WriteLine(Dump(h));
}

void SessionRecorder::Event(std::int64_t now_ms, const char* type, std::string_view text) {
  std::int64_t t = std::max<std::int64_t>(0, now_ms - header_.start_ms);
  // [seconds, type, text]; the time as a JSON number with millisecond precision.
  std::string line;
  line.reserve(text.size() + 32);
  line += "[";
  line += Seconds(t);
  line += ", \"";
  line += type;
  line += "\", ";
  AppendJsonString(line, text);
  line += "]";
  if (holding_) {
    if (t < kHeaderWaitMs && pending_bytes_ + line.size() <= kHeaderWaitBytes) {
      pending_bytes_ += line.size();
      pending_.push_back(std::move(line));
      return;
    }
    Release();
  }
  WriteHeaderOnce();
  WriteLine(line);
}

void SessionRecorder::Release() {
  holding_ = false;
  WriteHeaderOnce();
  for (const auto& l : pending_) WriteLine(l);
  pending_.clear();
  pending_bytes_ = 0;
}

void SessionRecorder::Output(std::int64_t now_ms, const char* type, std::string& carry, std::string_view data,
                             std::uint64_t full_size) {
  // Less data than the payload's size: cut by the decoder's message limit,
  // or left out by the tap past the cap or when the writer fell behind.
  if (data.size() < full_size) summary_.truncated = true;
  if (payload_written_ >= options_.max_bytes) {
    summary_.truncated = true;
    return;
  }
  std::size_t room = static_cast<std::size_t>(std::min<std::uint64_t>(options_.max_bytes - payload_written_, data.size()));
  if (room < data.size()) summary_.truncated = true;
  payload_written_ += room;
  std::string_view chunk = data.substr(0, room);
  if (carry.empty()) {  // the usual case: no copy before escaping
    std::size_t n = CompleteUtf8Prefix(chunk);
    if (n) Event(now_ms, type, chunk.substr(0, n));
    carry.assign(chunk.substr(n));
    return;
  }
  carry.append(chunk);
  std::size_t n = CompleteUtf8Prefix(carry);
  if (n == 0) return;
  Event(now_ms, type, std::string_view(carry).substr(0, n));
  carry.erase(0, n);
}

void SessionRecorder::Add(const StreamEvent& e, std::int64_t now_ms) {
  if (finished_) return;
  if (e.payload_dropped) {
    summary_.truncated = true;
    summary_.dropped_bytes += e.size;
  }
  if (header_.kind == "portforward") {
    AddPortForward(e, now_ms);
    return;
  }
  if (e.kind != StreamEvent::Kind::kData) return;
  if (e.channel == "stdout" && !e.from_client) {
    summary_.stdout_bytes += e.size;
    Output(now_ms, "o", carry_stdout_, e.data, e.size);
  } else if (e.channel == "stderr" && !e.from_client) {
    summary_.stderr_bytes += e.size;
    Output(now_ms, "o", carry_stderr_, e.data, e.size);
  } else if (e.channel == "stdin" && e.from_client) {
    summary_.stdin_bytes += e.size;
    if (options_.stdin_mode == StdinMode::kRecord) Output(now_ms, "i", carry_stdin_, e.data, e.size);
    if (options_.stdin_mode == StdinMode::kRedact) Event(now_ms, "i", "[" + std::to_string(e.size) + " bytes redacted]");
  } else if (e.channel == "resize" && e.from_client) {
    // {"Width":120,"Height":40} from the caller: types are not trusted.
    auto j = nlohmann::json::parse(e.data, nullptr, false);
    auto jw = IntField(j, "Width"), jh = IntField(j, "Height");
    if (!jw || !jh || *jw <= 0 || *jh <= 0 || *jw > 10000 || *jh > 10000) return;
    int w = static_cast<int>(*jw), h = static_cast<int>(*jh);
    summary_.resizes++;
    if (holding_ || !header_written_) {
      // The terminal's size at the start goes into the header.
      width_ = w;
      height_ = h;
      if (holding_) Release();
      return;
    }
    width_ = w;
    height_ = h;
    Event(now_ms, "r", std::to_string(w) + "x" + std::to_string(h));
  } else if (e.channel == "error" && !e.from_client) {
    std::size_t room = kMaxErrorChannelBytes - std::min(kMaxErrorChannelBytes, error_channel_.size());
    error_channel_.append(e.data.substr(0, room));
  }
}

void SessionRecorder::AddPortForward(const StreamEvent& e, std::int64_t now_ms) {
  PortForwardConnection* c = nullptr;
  for (auto& oc : open_connections_) {
    if (oc.request_id == e.request_id && oc.port == e.port) c = &oc;
  }
  if (e.kind == StreamEvent::Kind::kOpen) {
    if (!c) {
      open_connections_.push_back({e.request_id, e.port, now_ms, 0, 0, 0, "", 0, false, false});
      c = &open_connections_.back();
    }
    if (e.channel == "data") c->data_stream = e.stream_id;
    return;
  }
  if (!c) return;
  if (e.kind == StreamEvent::Kind::kData) {
    if (e.channel == "data") (e.from_client ? c->bytes_to_pod : c->bytes_from_pod) += e.size;
    if (e.channel == "data" && options_.portforward_payload) {
      // The payload itself, when the rule asks for it: base64, within max_bytes.
      std::size_t room = static_cast<std::size_t>(
          std::min<std::uint64_t>(options_.max_bytes - std::min(options_.max_bytes, payload_written_), e.data.size()));
      if (room < e.size) summary_.truncated = true;
      if (room > 0) {
        payload_written_ += room;
        WriteLine(Dump({{"t", Seconds(std::max<std::int64_t>(0, now_ms - header_.start_ms))},
                        {"request_id", e.request_id},
                        {"port", e.port},
                        {"direction", e.from_client ? "to_pod" : "from_pod"},
                        {"data_base64", Base64Encode(std::string_view(e.data).substr(0, room))}}));
      }
    }
    if (e.channel == "error" && !e.from_client && c->error.size() < 4096) c->error += e.data.substr(0, 4096);
    return;
  }
  if (e.stream_id != c->data_stream || c->data_stream == 0) return;
  (e.from_client ? c->closed_by_client : c->closed_by_server) = true;
  if (e.reset || (c->closed_by_client && c->closed_by_server)) {
    PortForwardConnection done = *c;
    open_connections_.erase(open_connections_.begin() + (c - open_connections_.data()));
    CloseConnection(done, now_ms);
  }
}

void SessionRecorder::CloseConnection(PortForwardConnection& c, std::int64_t now_ms) {
  c.closed_ms = now_ms;
  WriteLine(Dump({{"request_id", c.request_id},
                  {"port", c.port},
                  {"opened", Seconds(std::max<std::int64_t>(0, c.opened_ms - header_.start_ms))},
                  {"closed", Seconds(std::max<std::int64_t>(0, c.closed_ms - header_.start_ms))},
                  {"bytes_to_pod", c.bytes_to_pod},
                  {"bytes_from_pod", c.bytes_from_pod},
                  {"error", c.error}}));
  summary_.connections.push_back(c);
}

RecordingSummary SessionRecorder::Finish(std::int64_t now_ms, const std::string& ended_by) {
  if (finished_) return summary_;
  finished_ = true;
  summary_.ended_by = ended_by;
  if (header_.kind == "portforward") {
    for (auto& c : open_connections_) CloseConnection(c, now_ms);
    open_connections_.clear();
  } else {
    // What is left of an incomplete UTF-8 sequence is written as is (JSON
    // encoding replaces it).
    for (auto [carry, type] : {std::pair{&carry_stdout_, "o"}, std::pair{&carry_stderr_, "o"}, std::pair{&carry_stdin_, "i"}}) {
      if (!carry->empty()) Event(now_ms, type, *carry);
    }
    // The exit status: a metav1.Status on the error channel (v4, v5), or
    // plain text (older protocols).
    // (The Status comes from the pod's side: types are not trusted.)
    if (!error_channel_.empty()) {
      auto st = nlohmann::json::parse(error_channel_, nullptr, false);
      if (StringField(st, "status") == "Success") {
        summary_.exit_code = 0;
      } else if (st.is_object()) {
        summary_.exit_message = StringField(st, "message");
        const nlohmann::json& causes = Field(Field(st, "details"), "causes");
        if (StringField(st, "reason") == "NonZeroExitCode" && causes.is_array()) {
          for (const auto& c : causes) {
            std::string code = StringField(c, "message");
            if (StringField(c, "reason") != "ExitCode" || code.empty() || code.size() > 9 ||
                code.find_first_not_of("0123456789") != std::string::npos) {
              continue;
            }
            summary_.exit_code = std::stoi(code);
          }
        }
      } else {
        summary_.exit_message = error_channel_;
      }
    }
    std::string end;
    if (summary_.exit_code) end = "exit status " + std::to_string(*summary_.exit_code);
    if (!summary_.exit_message.empty()) end += (end.empty() ? "" : ": ") + summary_.exit_message;
    if (!ended_by.empty()) end += (end.empty() ? "" : "; ") + ended_by;
    if (!end.empty()) Event(now_ms, "m", end);
    Release();
  }
  if (sink_ && !sink_->Close() && summary_.write_error.empty()) summary_.write_error = "closing the recording failed";
  summary_.sha256 = sha_.HexDigest();
  return summary_;
}

}  // namespace kubegate
