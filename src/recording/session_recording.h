// SessionRecorder: an exec, attach or port-forward session recorded from
// the relay's copy of its bytes, outside the caller's reach.
//
//   exec/attach  asciicast v2 (asciinema play and the asciinema web player
//                read it): stdout and stderr as "o" events, stdin as "i"
//                events (unless the rule switches stdin off), resizes as
//                "r" events, and the exit status from the error channel as
//                a final "m" (marker) event. The header carries who, the pod,
//                container, command, approval and grant under "kubegate".
//                Payload beyond max_bytes is counted, not written.
//   port-forward JSON lines ("kubegate-portforward/v1"): the header, then
//                one line per tunnelled connection: remote port, request
//                id, open and close times, bytes each way, its error text.
//                The payload only when the rule asks (portforward_payload):
//                then a line per piece, base64, within max_bytes.
//
//   SessionRecorder rec(std::move(sink), header, options, MakeSessionDecoder(...));
//   rec.FromClient(bytes, now_ms); rec.FromServer(bytes, now_ms);   // the relay's copies
//   if (rec.failed()) ...                                           // a write failed
//   RecordingSummary s = rec.Finish(now_ms, "");                    // for the audit record
//
// The SHA-256 of every byte written is in the summary; the audit result
// record keeps it, so `kubegate audit verify` detects a swapped file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/result.h"
#include "recording/stream_decoder.h"

namespace kubegate {

// Where a recording's bytes go; a file in the data directory in production,
// behind this interface so tests can inject failures.
class RecordingSink {
 public:
  virtual ~RecordingSink() = default;
  virtual bool Write(std::string_view bytes) = 0;  // false: the write failed
  virtual bool Close() = 0;                        // flushes; false on failure
};

// Creates `path` (mode 0600; never an existing file) for writing, buffered.
Result<std::unique_ptr<RecordingSink>> CreateRecordingFile(const std::string& path);

// What a recording is of (the header).
struct RecordingHeader {
  std::string request_id;
  std::string kind;  // exec, attach, portforward
  std::string user;
  std::string namespace_, pod, container;
  std::vector<std::string> command;
  bool tty = false;
  std::string approval_id, grant_id;
  std::int64_t start_ms = 0;
};

// What a recording keeps of stdin: everything, nothing (only its byte
// count), or an "i" event per input saying how many bytes were typed when
// (the timing without the content).
enum class StdinMode { kRecord, kOmit, kRedact };
const char* StdinModeName(StdinMode m);

struct RecordingOptions {
  StdinMode stdin_mode = StdinMode::kRecord;
  // Port-forward: also write the tunnelled bytes (base64, within max_bytes).
  bool portforward_payload = false;
  std::uint64_t max_bytes = 64ull << 20;  // payload written before only counting
  std::size_t max_message = 1 << 20;      // the decoder's message limit
};

struct PortForwardConnection {
  std::string request_id, port;
  std::int64_t opened_ms = 0, closed_ms = 0;
  std::uint64_t bytes_to_pod = 0, bytes_from_pod = 0;
  std::string error;  // the error stream's text
  // The data stream: the connection ends when it is closed both ways or reset.
  std::uint32_t data_stream = 0;
  bool closed_by_client = false, closed_by_server = false;
};

struct RecordingSummary {
  std::string format;  // asciicast-v2, kubegate-portforward-v1
  std::string sha256;
  std::uint64_t file_bytes = 0;
  std::uint64_t stdin_bytes = 0, stdout_bytes = 0, stderr_bytes = 0;
  StdinMode stdin_mode = StdinMode::kRecord;
  bool truncated = false;  // payload beyond max_bytes (or dropped) was only counted
  std::uint64_t dropped_bytes = 0;  // payload the writer could not keep up with (optional recordings)
  int resizes = 0;
  std::optional<int> exit_code;  // from the error channel's Status
  std::string exit_message;
  std::vector<PortForwardConnection> connections;
  std::string decoder_error;  // the stream could not be read (relayed anyway)
  std::string write_error;    // the recording could not be written
  std::string ended_by;       // why kubegate ended the session, if it did

  nlohmann::json ToJson() const;
};

class SessionRecorder {
 public:
  // `decoder` may be null: events then come through AddEvent, or (unknown
  // protocol) only byte counts are kept.
  SessionRecorder(std::unique_ptr<RecordingSink> sink, RecordingHeader header, RecordingOptions options,
                  std::unique_ptr<SessionDecoder> decoder);
  ~SessionRecorder();

  // Bytes to decode with the recorder's own decoder (tests, tools)...
  void FromClient(std::string_view bytes, std::int64_t now_ms);
  void FromServer(std::string_view bytes, std::int64_t now_ms);
  // ... or events decoded elsewhere (RecordingTap, on the writer thread).
  void AddEvent(const StreamEvent& e, std::int64_t now_ms) { Add(e, now_ms); }
  void NoteDecoderError(const std::string& why) {
    if (summary_.decoder_error.empty()) summary_.decoder_error = why;
  }
  // A write to the sink failed: a session whose rule requires recording
  // must end.
  bool failed() const { return !summary_.write_error.empty(); }
  // Ends the recording (closes the sink). `ended_by`: why kubegate closed
  // the session, "" when a side closed it.
  RecordingSummary Finish(std::int64_t now_ms, const std::string& ended_by);

 private:
  void Drain(std::int64_t now_ms);
  void Add(const StreamEvent& e, std::int64_t now_ms);
  void AddPortForward(const StreamEvent& e, std::int64_t now_ms);
  void WriteHeaderOnce();
  void Release();  // writes the header and the events held for it
  void Event(std::int64_t now_ms, const char* type, std::string_view text);
  void Output(std::int64_t now_ms, const char* type, std::string& carry, std::string_view data,
              std::uint64_t full_size);
  void WriteLine(const std::string& line);
  void CloseConnection(PortForwardConnection& c, std::int64_t now_ms);

  std::unique_ptr<RecordingSink> sink_;
  RecordingHeader header_;
  RecordingOptions options_;
  std::unique_ptr<SessionDecoder> decoder_;
  Sha256Stream sha_;
  RecordingSummary summary_;
  bool header_written_ = false;
  // TTY sessions: events held until the first resize gives the header its
  // size, at most kHeaderWaitMs after the start or kHeaderWaitBytes.
  static constexpr std::int64_t kHeaderWaitMs = 2000;
  static constexpr std::size_t kHeaderWaitBytes = 64 * 1024;
  bool holding_ = false;
  std::vector<std::string> pending_;
  std::size_t pending_bytes_ = 0;
  bool finished_ = false;
  int width_ = 80, height_ = 24;
  std::uint64_t payload_written_ = 0;
  std::string carry_stdout_, carry_stderr_, carry_stdin_;  // an incomplete UTF-8 tail
  std::string error_channel_;
  std::vector<PortForwardConnection> open_connections_;
};

}  // namespace kubegate
