// RecordingTap: what the relay holds for a recorded session. On the relay's
// thread it only decodes the copied bytes (cheap) and hands the decoded
// events to the RecordingWriter thread, which formats, hashes and writes
// them (SessionRecorder). So the relay is not held up by the file.
//
// A recorder that falls behind by more than `max_pending` bytes:
//   - optional recording: later payload is dropped, not queued; its bytes
//     are still counted and the summary says truncated (the relay never
//     waits);
//   - required recording: behind() is true and the relay waits until the
//     writer catches up (a required recording is complete or the session
//     does not go on).
//
//   RecordingWriter writer;                                  // one per gateway
//   RecordingTap tap(writer, std::move(recorder), MakeSessionDecoder(...), required, limit);
//   tap.FromClient(bytes, now); tap.FromServer(bytes, now); // relay thread
//   tap.Finish(now, reason, [](RecordingSummary s) {...});   // `done` runs on the writer thread
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "recording/session_recording.h"
#include "recording/stream_decoder.h"

namespace kubegate {

// One thread that runs posted tasks in order.
class RecordingWriter {
 public:
  RecordingWriter();
  ~RecordingWriter();  // runs what is queued, then joins
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;
  void Post(std::function<void()> task);

 private:
  void Run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

class RecordingTap {
 public:
  // `decoder` null: the protocol is unknown; only byte counts are kept.
  // `max_bytes` is the recorder's cap (RecordingOptions::max_bytes): payload
  // past it is only counted, so the tap stops queueing it.
  // Events are handed over in batches of `batch_bytes` of payload or
  // kBatchEvents events (each keeps its own time), so the writer thread is
  // woken per batch, not per relay read.
  RecordingTap(RecordingWriter& writer, std::unique_ptr<SessionRecorder> recorder,
               std::unique_ptr<SessionDecoder> decoder, bool required, std::size_t max_pending,
               std::uint64_t max_bytes, std::size_t batch_bytes = kBatchBytes);
  static constexpr std::size_t kBatchBytes = 1 << 20;
  static constexpr std::size_t kBatchEvents = 256;

  void FromClient(std::string_view bytes, std::int64_t now_ms) { Feed(true, bytes, now_ms); }
  void FromServer(std::string_view bytes, std::int64_t now_ms) { Feed(false, bytes, now_ms); }
  // A required recording's writer is more than max_pending behind.
  bool behind() const { return required_ && state_->pending.load() > max_pending_; }
  // A write failed (the recorder said so on the writer thread).
  bool failed() const { return state_->failed.load(); }
  std::uint64_t dropped_bytes() const { return dropped_; }
  // Ends the recording after everything posted so far.
  void Finish(std::int64_t now_ms, const std::string& ended_by, std::function<void(RecordingSummary)> done);

 private:
  struct State {
    std::unique_ptr<SessionRecorder> recorder;
    std::atomic<std::size_t> pending{0};
    std::atomic<bool> failed{false};
  };
  void Feed(bool from_client, std::string_view bytes, std::int64_t now_ms);
  void Flush();  // posts the batch to the writer

  struct Timed {
    StreamEvent event;
    std::int64_t at_ms;
  };
  std::vector<Timed> batch_;
  std::size_t batch_bytes_ = 0;
  std::string batch_error_;

  RecordingWriter& writer_;
  std::shared_ptr<State> state_;
  std::unique_ptr<SessionDecoder> decoder_;
  const bool required_;
  const std::size_t max_pending_;
  const std::uint64_t max_bytes_;
  const std::size_t batch_limit_;
  std::uint64_t payload_posted_ = 0;
  std::uint64_t dropped_ = 0;
  bool decoder_error_posted_ = false;
  bool decoder_told_cap_ = false;
};

}  // namespace kubegate
