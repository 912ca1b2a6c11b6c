#include "recording/session_recording.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <sstream>

#include "recording/recording_tap.h"
#include "spdy/spdy_frame.h"

namespace kubegate {
namespace {

// An in-memory sink that can be told to fail.
struct MemorySink : RecordingSink {
  std::string* out;
  bool fail_writes = false;
  explicit MemorySink(std::string* o) : out(o) {}
  bool Write(std::string_view b) override {
    if (fail_writes) return false;
    out->append(b);
    return true;
  }
  bool Close() override { return true; }
};

// A v5 WebSocket decoder fed with unmasked frames from both sides is enough
// here: the decoders have their own tests.
std::string Frame(int channel, std::string_view payload) {
  std::string p = std::string(1, static_cast<char>(channel)) + std::string(payload);
  if (p.size() < 126) return std::string{static_cast<char>(0x82), static_cast<char>(p.size())} + p;
  return std::string{static_cast<char>(0x82), 126, static_cast<char>(p.size() >> 8), static_cast<char>(p.size())} + p;
}

std::vector<nlohmann::json> Lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

RecordingHeader ExecHeader() {
  RecordingHeader h;
  h.request_id = "kg-1";
  h.kind = "exec";
  h.user = "alice";
  h.namespace_ = "prod";
  h.pod = "web";
  h.container = "app";
  h.command = {"sh"};
  h.tty = true;
  h.approval_id = "kg-0";
  h.start_ms = 1'000'000;
  return h;
}

TEST(SessionRecorder, WritesAsciicastWithInputResizesAndTheExitStatus) {
  std::string file;
  SessionRecorder rec(std::make_unique<MemorySink>(&file), ExecHeader(), {},
                      MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20));
  rec.FromClient(Frame(4, R"({"Width":120,"Height":40})"), 1'000'010);
  rec.FromServer(Frame(1, "$ "), 1'000'100);
  rec.FromClient(Frame(0, "ls\r"), 1'001'500);
  // "é" (c3 a9) split across two messages stays one character.
  rec.FromServer(Frame(1, "caf\xc3"), 1'001'600);
  rec.FromServer(Frame(1, "\xa9\r\n"), 1'001'601);
  rec.FromClient(Frame(4, R"({"Width":100,"Height":30})"), 1'002'000);
  rec.FromServer(Frame(3, R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})"),
                 1'003'000);
  RecordingSummary s = rec.Finish(1'003'001, "");
  auto lines = Lines(file);
  ASSERT_EQ(lines.size(), 7u) << file;
  EXPECT_EQ(lines[0]["version"], 2);
  EXPECT_EQ(lines[0]["width"], 120);  // the first resize, before any output
  EXPECT_EQ(lines[0]["height"], 40);
  EXPECT_EQ(lines[0]["timestamp"], 1000);
  EXPECT_EQ(lines[0]["kubegate"]["pod"], "web");
  EXPECT_EQ(lines[0]["kubegate"]["approval_id"], "kg-0");
  EXPECT_EQ(lines[1], nlohmann::json::parse(R"([0.1, "o", "$ "])"));
  EXPECT_EQ(lines[2], nlohmann::json::parse(R"([1.5, "i", "ls\r"])"));
  EXPECT_EQ(lines[3][2], "caf");  // the lead byte waits for the rest of its character
  EXPECT_EQ(lines[4][2], "\xc3\xa9\r\n");
  EXPECT_EQ(lines[5], nlohmann::json::parse(R"([2.0, "r", "100x30"])"));
  EXPECT_EQ(lines[6][1], "m");
  EXPECT_EQ(lines[6][2].get<std::string>().rfind("exit status 3", 0), 0u);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.stdin_bytes, 3u);
  EXPECT_EQ(s.stdout_bytes, 9u);
  EXPECT_EQ(s.resizes, 2);
  EXPECT_EQ(s.sha256, Sha256Hex(file));
  EXPECT_EQ(s.file_bytes, file.size());
  EXPECT_TRUE(s.write_error.empty());
}

TEST(SessionRecorder, StdinOffCapsAndFailedWrites) {
  std::string file;
  RecordingOptions o;
  o.stdin_mode = StdinMode::kOmit;
  o.max_bytes = 10;
  RecordingHeader h = ExecHeader();
  h.tty = false;
  SessionRecorder rec(std::make_unique<MemorySink>(&file), h, o, MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20));
  rec.FromClient(Frame(0, "secret-password"), 1'000'001);
  rec.FromServer(Frame(1, "0123456"), 1'000'002);
  rec.FromServer(Frame(2, "789abcdef"), 1'000'003);
  rec.FromServer(Frame(1, "more"), 1'000'004);
  rec.FromServer(Frame(3, R"({"metadata":{},"status":"Success"})"), 1'000'005);
  RecordingSummary s = rec.Finish(1'000'006, "");
  EXPECT_EQ(file.find("secret-password"), std::string::npos);
  EXPECT_NE(file.find("\"0123456\""), std::string::npos) << file;
  EXPECT_NE(file.find("\"789\""), std::string::npos) << file;  // cut at 10 bytes of payload
  EXPECT_EQ(file.find("more"), std::string::npos);
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.stdin_mode, StdinMode::kOmit);
  EXPECT_EQ(s.stdin_bytes, 15u);  // still counted
  EXPECT_EQ(s.stdout_bytes, 11u);
  EXPECT_EQ(s.stderr_bytes, 9u);
  EXPECT_EQ(s.exit_code, 0);

  std::string lost;
  auto sink = std::make_unique<MemorySink>(&lost);
  MemorySink* raw = sink.get();
  SessionRecorder failing(std::move(sink), h, {}, MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20));
  failing.FromServer(Frame(1, "a"), 1'000'001);
  EXPECT_FALSE(failing.failed());
  raw->fail_writes = true;
  failing.FromServer(Frame(1, "b"), 1'000'002);
  EXPECT_TRUE(failing.failed());
  EXPECT_FALSE(failing.Finish(1'000'003, "").write_error.empty());
}

TEST(SessionRecorder, HostileResizeAndStatusJsonNeverThrow) {
  std::string file;
  SessionRecorder rec(std::make_unique<MemorySink>(&file), ExecHeader(), {},
                      MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20));
  for (const char* bad : {R"({"Width":"wide","Height":[1]})", R"([1,2])", R"({"Width":-1,"Height":5})",
                          R"({"Width":1e300,"Height":5})", "not json"}) {
    rec.FromClient(Frame(4, bad), 1'000'001);
  }
  rec.FromServer(Frame(1, "out"), 1'000'002);
  rec.FromServer(Frame(3, R"({"status":{"x":1},"reason":"NonZeroExitCode","details":{"causes":[1,{"reason":"ExitCode","message":9}]}})"),
                 1'000'003);
  RecordingSummary s = rec.Finish(1'000'004, "");
  EXPECT_EQ(s.resizes, 0);
  EXPECT_FALSE(s.exit_code);
  EXPECT_EQ(Lines(file)[0]["width"], 80);  // no valid resize: the default size
}

TEST(SessionRecorder, StdinRedactedKeepsTimingNotContent) {
  std::string file;
  RecordingOptions o;
  o.stdin_mode = StdinMode::kRedact;
  RecordingHeader h = ExecHeader();
  h.tty = false;
  SessionRecorder rec(std::make_unique<MemorySink>(&file), h, o, MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20));
  rec.FromClient(Frame(0, "s3cret\n"), 1'000'250);
  RecordingSummary s = rec.Finish(1'000'300, "");
  EXPECT_EQ(file.find("s3cret"), std::string::npos) << file;
  EXPECT_NE(file.find(R"([0.250, "i", "[7 bytes redacted]"])"), std::string::npos) << file;
  EXPECT_EQ(s.stdin_mode, StdinMode::kRedact);
  EXPECT_EQ(s.ToJson()["stdin"], "redacted");
}

TEST(SessionRecorder, PortForwardRecordsEachConnectionNotItsPayload) {
  std::string file;
  RecordingHeader h = ExecHeader();
  h.kind = "portforward";
  SessionRecorder rec(std::make_unique<MemorySink>(&file), h, {}, MakeSessionDecoder("SPDY/3.1", "portforward.k8s.io", 1 << 20));
  spdy::HeaderDeflater client;
  spdy::HeaderDeflater server;
  // (One statement per header block: each deflate context must see them in order.)
  rec.FromClient(spdy::SynStream(1, client.Deflate({{"streamtype", "error"}, {"port", "80"}, {"requestid", "0"}})),
                 1'000'100);
  rec.FromClient(spdy::SynStream(3, client.Deflate({{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}})),
                 1'000'100);
  rec.FromServer(spdy::SynReply(1, server.Deflate({})), 1'000'101);
  rec.FromServer(spdy::SynReply(3, server.Deflate({})), 1'000'101);
  rec.FromClient(spdy::DataFrame(3, "GET /private HTTP/1.1\r\n\r\n", false), 1'000'200);
  rec.FromServer(spdy::DataFrame(3, "HTTP/1.1 200 OK\r\n\r\nbody", false), 1'000'300);
  rec.FromClient(spdy::DataFrame(3, "", true), 1'000'400);
  rec.FromServer(spdy::DataFrame(3, "", true), 1'000'500);
  rec.FromClient(spdy::SynStream(5, client.Deflate({{"streamtype", "data"}, {"port", "80"}, {"requestid", "1"}})),
                 1'000'600);
  RecordingSummary s = rec.Finish(1'001'000, "");
  auto lines = Lines(file);
  ASSERT_EQ(lines.size(), 3u) << file;
  EXPECT_EQ(lines[0]["kubegate_recording"], "portforward/v1");
  EXPECT_EQ(lines[1]["request_id"], "0");
  EXPECT_EQ(lines[1]["port"], "80");
  EXPECT_EQ(lines[1]["bytes_to_pod"], 25);
  EXPECT_EQ(lines[1]["bytes_from_pod"], 23);
  EXPECT_EQ(lines[1]["closed"], "0.500");
  EXPECT_EQ(lines[2]["request_id"], "1");  // still open at the end
  EXPECT_EQ(file.find("private"), std::string::npos) << "payload recorded";
  ASSERT_EQ(s.connections.size(), 2u);
  EXPECT_EQ(s.sha256, Sha256Hex(file));

  // With the payload asked for: each piece, base64, within max_bytes.
  std::string with_payload;
  RecordingOptions o;
  o.portforward_payload = true;
  o.max_bytes = 30;
  SessionRecorder full(std::make_unique<MemorySink>(&with_payload), h, o,
                       MakeSessionDecoder("SPDY/3.1", "portforward.k8s.io", 1 << 20));
  spdy::HeaderDeflater c2;
  full.FromClient(spdy::SynStream(3, c2.Deflate({{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}})), 1'000'100);
  full.FromClient(spdy::DataFrame(3, "GET /private HTTP/1.1\r\n\r\n", false), 1'000'200);
  full.FromServer(spdy::DataFrame(3, "HTTP/1.1 200 OK\r\n\r\nbody", false), 1'000'300);
  RecordingSummary fs = full.Finish(1'000'400, "");
  auto pl = Lines(with_payload);
  ASSERT_EQ(pl.size(), 4u) << with_payload;  // header, two pieces, the connection
  EXPECT_EQ(pl[1]["direction"], "to_pod");
  EXPECT_EQ(pl[1]["data_base64"], "R0VUIC9wcml2YXRlIEhUVFAvMS4xDQoNCg==");
  EXPECT_EQ(pl[2]["direction"], "from_pod");
  EXPECT_EQ(pl[2]["data_base64"], "SFRUUC8=");  // "HTTP/": 5 bytes left under the cap of 30
  EXPECT_TRUE(fs.truncated);
  EXPECT_EQ(pl[3]["bytes_from_pod"], 23);
}

}  // namespace
}  // namespace kubegate

namespace kubegate {
namespace {

// The "o" events' text, joined.
std::string CastLikeOutput(const std::string& file) {
  std::string out;
  for (const auto& l : Lines(file)) {
    if (l.is_array() && l[1] == "o") out += l[2].get<std::string>();
  }
  return out;
}

// A sink that blocks writes until released: a disk that cannot keep up.
struct GatedSink : RecordingSink {
  std::string* out;
  std::mutex* mu;
  std::condition_variable* cv;
  bool* open;
  GatedSink(std::string* o, std::mutex* m, std::condition_variable* c, bool* g) : out(o), mu(m), cv(c), open(g) {}
  bool Write(std::string_view b) override {
    std::unique_lock<std::mutex> lock(*mu);
    cv->wait(lock, [this] { return *open; });
    out->append(b);
    return true;
  }
  bool Close() override { return true; }
};

TEST(RecordingTap, WriterBehindDropsOptionalPayloadAndHoldsRequiredSessions) {
  for (bool required : {false, true}) {
    std::string file;
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    RecordingHeader h = ExecHeader();
    h.tty = false;
    RecordingWriter writer;
    RecordingTap tap(writer, std::make_unique<SessionRecorder>(std::make_unique<GatedSink>(&file, &mu, &cv, &open), h,
                                                               RecordingOptions{}, nullptr),
                     MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20), required, /*max_pending=*/100,
                     /*max_bytes=*/1 << 20, /*batch_bytes=*/1);
    std::string chunk(60, 'x');
    tap.FromServer(Frame(1, chunk), 1'000'001);  // the writer takes it and blocks on the sink
    tap.FromServer(Frame(1, chunk), 1'000'002);  // 120 bytes pending: over the limit of 100
    tap.FromServer(Frame(1, chunk), 1'000'003);  // optional: dropped, counted
    EXPECT_EQ(tap.behind(), required);
    tap.FromServer(Frame(1, "late"), 1'000'004);  // optional: dropped, counted
    tap.FromServer(Frame(3, R"({"metadata":{},"status":"Success"})"), 1'000'005);  // never dropped
    EXPECT_EQ(tap.dropped_bytes(), required ? 0u : 64u);
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
    std::promise<RecordingSummary> done;
    tap.Finish(1'000'006, "", [&done](RecordingSummary s) { done.set_value(std::move(s)); });
    RecordingSummary s = done.get_future().get();
    EXPECT_FALSE(tap.behind());
    EXPECT_EQ(s.stdout_bytes, 184u);  // counted either way
    EXPECT_EQ(s.exit_code, 0);
    EXPECT_EQ(s.truncated, !required);
    EXPECT_EQ(s.dropped_bytes, required ? 0u : 64u);
    EXPECT_EQ(file.find("late") != std::string::npos, required) << file;
    EXPECT_EQ(s.sha256, Sha256Hex(file));
  }
}

// A decoder that notes when the tap tells it to stop keeping payload.
class ToldDecoder final : public SessionDecoder {
 public:
  ToldDecoder(std::unique_ptr<SessionDecoder> inner, bool* told) : inner_(std::move(inner)), told_(told) {}
  void FromClient(std::string_view b) override { Pass(true, b); }
  void FromServer(std::string_view b) override { Pass(false, b); }
  void StopKeepingPayload() override {
    *told_ = true;
    inner_->StopKeepingPayload();
  }

 private:
  void Pass(bool from_client, std::string_view b) {
    from_client ? inner_->FromClient(b) : inner_->FromServer(b);
    for (auto& e : inner_->Take()) events_.push_back(std::move(e));
    error_ = inner_->error_message();
  }
  std::unique_ptr<SessionDecoder> inner_;
  bool* told_;
};

TEST(RecordingTap, PayloadPastTheCapIsCountedNotQueued) {
  std::string file;
  RecordingHeader h = ExecHeader();
  h.tty = false;
  RecordingOptions o;
  o.max_bytes = 10;
  RecordingWriter writer;
  bool told = false;
  RecordingTap tap(writer, std::make_unique<SessionRecorder>(std::make_unique<MemorySink>(&file), h, o, nullptr),
                   std::make_unique<ToldDecoder>(MakeSessionDecoder("websocket", "v5.channel.k8s.io", 1 << 20), &told),
                   false, 1 << 20, o.max_bytes);
  tap.FromServer(Frame(1, "aaaaaaaa"), 1'000'001);
  EXPECT_FALSE(told);
  tap.FromServer(Frame(1, "bbbbbbbb"), 1'000'001);
  EXPECT_TRUE(told) << "the cap is reached: the decoder need not keep payload any more";
  tap.FromServer(Frame(1, "cccccccc"), 1'000'001);
  std::promise<RecordingSummary> done;
  tap.Finish(1'000'002, "", [&done](RecordingSummary s) { done.set_value(std::move(s)); });
  RecordingSummary s = done.get_future().get();
  EXPECT_EQ(s.stdout_bytes, 24u);
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.dropped_bytes, 0u);  // past the cap is not "dropped"
  EXPECT_EQ(CastLikeOutput(file), "aaaaaaaabb");
}

}  // namespace
}  // namespace kubegate
