#include "cli/recording_commands.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "audit/recording_link.h"
#include "cli/audit_commands.h"
#include "config/config.h"
#include "audit/audit_store.h"

namespace kubegate {

struct RecordingCli {
  CLI::App* recording = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* replay = nullptr;
  std::string config_path, id, out;
  double speed = 1.0;
  double max_idle = 2.0;
};

namespace {

int Fail(const std::string& m) {
  std::cerr << "kubegate: " << m << "\n";
  return 1;
}

Result<LoadedRecording> Load(const RecordingCli& c) {
  auto cfg = LoadConfigFile(c.config_path);
  if (!cfg) return cfg.error();
  auto store = AuditStore::Open(StoreConfigFor(*cfg));
  if (!store) return store.error();
  return LoadRecording(**store, c.id, cfg->RecordingDir());
}

int Export(const RecordingCli& c) {
  auto r = Load(c);
  if (!r) return Fail(r.error().message);
  if (c.out.empty() || c.out == "-") {
    std::cout << r->content;
    return 0;
  }
  std::ofstream f(c.out, std::ios::binary | std::ios::trunc);
  f << r->content;
  if (!f.flush()) return Fail("cannot write " + c.out);
  std::cerr << "wrote " << c.out << " (" << r->content.size() << " bytes, sha256 " << r->summary.value("sha256", "")
            << " matches audit record " << c.id << ")\n";
  return 0;
}

void Describe(const LoadedRecording& r) {
  const auto& d = r.decision;
  std::string who = d.is_object() ? d["identity"].value("user", "") : "";
  std::cerr << "recording of " << r.request_id << " by " << who << " (" << r.summary.value("format", "")
            << ", sha256 matches its audit record)\n";
  if (d.is_object() && d.contains("approval") && !d["approval"].value("id", std::string()).empty()) {
    std::cerr << "approved under " << d["approval"].value("id", "") << "\n";
  }
}

int Replay(const RecordingCli& c) {
  auto r = Load(c);
  if (!r) return Fail(r.error().message);
  Describe(*r);
  std::istringstream in(r->content);
  std::string line;
  std::getline(in, line);  // the header
  if (r->summary.value("format", "") == "kubegate-portforward-v1") {
    std::cout << "port-forward connections (request id, remote port, opened, closed, bytes to pod, bytes from pod):\n";
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      std::cout << "  " << j.value("request_id", "") << "  port " << j.value("port", "") << "  " << j.value("opened", "")
                << "s - " << j.value("closed", "") << "s  " << j.value("bytes_to_pod", 0) << " / "
                << j.value("bytes_from_pod", 0) << " bytes" << (j.value("error", std::string()).empty() ? "" : "  error: ")
                << j.value("error", "") << "\n";
    }
    return 0;
  }
  double last = 0;
  std::string ending;
  while (std::getline(in, line)) {
    auto e = nlohmann::json::parse(line, nullptr, false);
    if (!e.is_array() || e.size() != 3 || !e[0].is_number() || !e[1].is_string() || !e[2].is_string()) continue;
    double t = e[0].get<double>();
    if (c.speed > 0) {
      double wait = std::min(std::max(0.0, t - last), c.max_idle) / c.speed;
      std::cout.flush();
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    last = t;
    std::string type = e[1].get<std::string>();
    if (type == "o") std::cout << e[2].get<std::string>();
    if (type == "m") ending = e[2].get<std::string>();
  }
  std::cout.flush();
  if (!ending.empty()) std::cerr << "\n[session ended: " << ending << "]\n";
  return 0;
}

}  // namespace

std::shared_ptr<RecordingCli> AddRecordingCommands(CLI::App& app) {
  auto c = std::make_shared<RecordingCli>();
  c->recording = app.add_subcommand("recording", "Session recordings of exec, attach and port-forward");
  c->export_ = c->recording->add_subcommand("export", "Write a session's recording (asciicast v2 for exec/attach)");
  c->export_->add_option("id", c->id, "Request id of the session (kg-...)")->required();
  c->export_->add_option("-o,--output", c->out, "File to write (default: stdout)");
  c->export_->add_option("--config", c->config_path, "Config file (YAML): names the store")->required();
  c->replay = app.add_subcommand("replay", "Play a session's recording in this terminal");
  c->replay->add_option("id", c->id, "Request id of the session (kg-...)")->required();
  c->replay->add_option("--speed", c->speed, "Playback speed; 0: no waiting")->capture_default_str();
  c->replay->add_option("--max-idle", c->max_idle, "Longest pause in seconds")->capture_default_str();
  c->replay->add_option("--config", c->config_path, "Config file (YAML): names the store")->required();
  return c;
}

int RunRecordingCommand(RecordingCli& c) {
  if (*c.export_) return Export(c);
  if (*c.replay) return Replay(c);
  if (*c.recording) {
    std::cerr << c.recording->help();
    return 2;
  }
  return -1;
}

}  // namespace kubegate
