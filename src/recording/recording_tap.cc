#include "recording/recording_tap.h"

#include "common/thread_name.h"

namespace kubegate {

RecordingWriter::RecordingWriter() : thread_([this] {
  NameThisThread("kg-recorder");
  Run();
}) {}

RecordingWriter::~RecordingWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void RecordingWriter::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void RecordingWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and nothing left
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

RecordingTap::RecordingTap(RecordingWriter& writer, std::unique_ptr<SessionRecorder> recorder,
                           std::unique_ptr<SessionDecoder> decoder, bool required, std::size_t max_pending,
                           std::uint64_t max_bytes, std::size_t batch_bytes)
    : writer_(writer),
      state_(std::make_shared<State>()),
      decoder_(std::move(decoder)),
      required_(required),
      max_pending_(max_pending),
      max_bytes_(max_bytes),
      batch_limit_(batch_bytes) {
  state_->recorder = std::move(recorder);
  if (!decoder_) {
    writer_.Post([s = state_] { s->recorder->NoteDecoderError("the session's stream protocol is not one kubegate reads"); });
  }
}

void RecordingTap::Feed(bool from_client, std::string_view bytes, std::int64_t now_ms) {
  if (!decoder_ || decoder_->error()) return;
  if (from_client) {
    decoder_->FromClient(bytes);
  } else {
    decoder_->FromServer(bytes);
  }
  std::vector<StreamEvent> events = decoder_->Take();
  if (decoder_->error() && !decoder_error_posted_) {
    batch_error_ = decoder_->error_message();
    decoder_error_posted_ = true;
  }
  const bool drop = !required_ && state_->pending.load() > max_pending_;
  for (auto& e : events) {
    if (e.kind == StreamEvent::Kind::kData) {
      // Only payload is ever left out: resizes and the exit Status always go.
      bool payload = e.channel == "stdout" || e.channel == "stderr" || e.channel == "stdin" || e.channel == "data";
      if (payload && payload_posted_ >= max_bytes_) {
        e.data.clear();  // past the recorder's cap: it would only count it
      } else if (drop && payload) {
        dropped_ += e.data.size();
        e.data.clear();
        e.payload_dropped = true;
      }
      if (payload) payload_posted_ += e.data.size();
      batch_bytes_ += e.data.size();
    }
    batch_.push_back({std::move(e), now_ms});
  }
  if (payload_posted_ >= max_bytes_ && !decoder_told_cap_) {
    decoder_->StopKeepingPayload();  // past the cap its payload would only be counted
    decoder_told_cap_ = true;
  }
  if (batch_bytes_ >= batch_limit_ || batch_.size() >= kBatchEvents || !batch_error_.empty()) Flush();
}

void RecordingTap::Flush() {
  if (batch_.empty() && batch_error_.empty()) return;
  std::size_t bytes = batch_bytes_;
  state_->pending += bytes;
  writer_.Post([s = state_, batch = std::move(batch_), error = std::move(batch_error_), bytes] {
    for (const auto& t : batch) s->recorder->AddEvent(t.event, t.at_ms);
    if (!error.empty()) s->recorder->NoteDecoderError(error);
    s->pending -= bytes;
    if (s->recorder->failed()) s->failed = true;
  });
  batch_.clear();
  batch_bytes_ = 0;
  batch_error_.clear();
}

void RecordingTap::Finish(std::int64_t now_ms, const std::string& ended_by,
                          std::function<void(RecordingSummary)> done) {
  Flush();
  writer_.Post([s = state_, now_ms, ended_by, done = std::move(done)] { done(s->recorder->Finish(now_ms, ended_by)); });
}

}  // namespace kubegate
