// End-to-end session recording beyond what the streaming tests check:
// policy hooks (required recording refuses a session that cannot be
// recorded; stdin left out), and `kubegate audit verify` catching a
// recording that was swapped, edited or deleted.
#include "e2e_env.h"

namespace e2e {
namespace {

const char* kRecordingPolicy = R"(apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: vault-sessions
    match: {resources: [pods/exec, pods/attach], names: ["vault-*"]}
    action: allow
    recording: {required: true, stdin: omit}
)";

std::string Kubegate() { return std::string(kBuildDir) + "/src/kubegate"; }

TEST(Recording, RequiredRecordingStdinOffAndVerifyCatchesSwappedFiles) {
  PolicyGateway gw("rec", kRecordingPolicy);
  ASSERT_FALSE(gw.url.empty()) << gw.process->output();
  for (const char* pod : {"vault-1", "plain-1"}) {
    ASSERT_EQ(gw.Run("alice", {"run", pod, "--image=busybox", "--restart=Never"}).code, 0);
  }
  // stdin: omit: what went in is counted, never written. kubectl cp is
  // exec tar with the file on stdin.
  std::string secret = WriteFile("rec-secret.txt", "hunter2-password\n");
  RunResult cp = gw.Run("alice", {"cp", secret, "vault-1:/tmp/secret.txt"});
  ASSERT_EQ(cp.code, 0) << cp.out;
  Recorded rec = RecordingOf("/pods/vault-1/exec", gw.Config());
  ASSERT_FALSE(rec.summary.is_null()) << rec.request_id;
  ASSERT_TRUE(rec.export_error.empty()) << rec.export_error;
  EXPECT_EQ(rec.summary["stdin"], "omitted");
  EXPECT_GT(rec.summary["stdin_bytes"].get<int>(), 512);  // a tar stream
  EXPECT_EQ(rec.file.find("hunter2"), std::string::npos) << rec.file;
  EXPECT_NE(rec.file.find("\"vault-1\""), std::string::npos) << rec.file;
  Process show({Kubegate(), "audit", "show", rec.request_id, "--config", gw.Config()});
  ASSERT_EQ(show.Finish(), 0) << show.output();
  EXPECT_NE(show.output().find("Session recording " + rec.request_id + ".cast (asciicast-v2, sha256 " +
                               rec.summary["sha256"].get<std::string>() + ")"),
            std::string::npos)
      << show.output();
  EXPECT_NE(show.output().find("bytes of stdin (omitted)"), std::string::npos) << show.output();
  EXPECT_NE(show.output().find("kubegate replay " + rec.request_id), std::string::npos) << show.output();

  // The chain and the recording verify; a swapped, edited or deleted file does not.
  Process ok({Kubegate(), "audit", "verify", "--config", gw.Config()});
  ASSERT_EQ(ok.Finish(), 0) << ok.output();
  // Two sessions: kubectl cp first runs `test -d` on the target, then tar.
  EXPECT_NE(ok.output().find(" 2 session recordings matching"), std::string::npos) << ok.output();
  fs::path file = E().dir / "rec-" / "recordings" / (rec.request_id + ".cast");
  ASSERT_TRUE(fs::exists(file));
  std::string original = ReadAll(file);
  std::string edited = original;
  edited.replace(edited.find("\"vault-1\""), 9, "\"vault-9\"");
  std::ofstream(file, std::ios::trunc) << edited;
  Process swapped({Kubegate(), "audit", "verify", "--config", gw.Config()});
  EXPECT_EQ(swapped.Finish(), 1);
  EXPECT_NE(swapped.output().find("(request " + rec.request_id + ")"), std::string::npos) << swapped.output();
  EXPECT_NE(swapped.output().find("does not match the hash in the record"), std::string::npos) << swapped.output();
  Process refused({Kubegate(), "recording", "export", rec.request_id, "--config", gw.Config()});
  EXPECT_NE(refused.Finish(), 0) << "an edited recording was exported";
  fs::remove(file);
  Process missing({Kubegate(), "audit", "verify", "--config", gw.Config()});
  EXPECT_EQ(missing.Finish(), 1);
  EXPECT_NE(missing.output().find("is missing"), std::string::npos) << missing.output();
  std::ofstream(file, std::ios::trunc) << original;
  Process restored({Kubegate(), "audit", "verify", "--config", gw.Config()});
  EXPECT_EQ(restored.Finish(), 0) << restored.output();
  // replay plays it (no waiting), saying whose session it was.
  Process replay({Kubegate(), "replay", rec.request_id, "--speed", "0", "--config", gw.Config()});
  EXPECT_EQ(replay.Finish(), 0) << replay.output();
  EXPECT_NE(replay.output().find("recording of " + rec.request_id + " by alice"), std::string::npos) << replay.output();

  // A recording that cannot start: required -> refused before anything is
  // forwarded; not required -> the session runs, counted as unrecorded.
  fs::path dir = E().dir / "rec-" / "recordings";
  fs::rename(dir, E().dir / "rec-recordings-away");
  std::ofstream(dir) << "not a directory";
  std::size_t before = E().Received("/pods/vault-1/exec").size();
  RunResult blocked = gw.Run("alice", {"exec", "vault-1", "--", "echo", "unrecorded"});
  EXPECT_NE(blocked.code, 0);
  EXPECT_NE(blocked.out.find("requires this session to be recorded"), std::string::npos) << blocked.out;
  EXPECT_EQ(E().Received("/pods/vault-1/exec").size(), before) << "forwarded without its required recording";
  RunResult plain = gw.Run("alice", {"exec", "plain-1", "--", "echo", "still-works"});
  EXPECT_EQ(plain.code, 0) << plain.out;
  fs::remove(dir);
  fs::rename(E().dir / "rec-recordings-away", dir);
  Process metrics({"/usr/bin/curl", "-sk", "-H", "Authorization: Bearer alice-secret-token", gw.url + "/metrics"});
  ASSERT_EQ(metrics.Finish(), 0);
  // Three: the refused WebSocket exec, kubectl's SPDY retry of it, and the
  // unrequired session that ran unrecorded.
  EXPECT_NE(metrics.output().find("kubegate_recording_failures_total 3"), std::string::npos) << metrics.output();

  // Auditors read recordings over the REST API (for the web player).
  Process api({"/usr/bin/curl", "-sk", "-H", "Authorization: Bearer admin-secret-token",
               gw.url + "/kubegate/v1/audit/" + rec.request_id + "/recording"});
  ASSERT_EQ(api.Finish(), 0);
  EXPECT_EQ(api.output(), original);
  Process outsider({"/usr/bin/curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                    "Authorization: Bearer alice-secret-token", gw.url + "/kubegate/v1/audit/" + rec.request_id + "/recording"});
  ASSERT_EQ(outsider.Finish(), 0);
  EXPECT_EQ(outsider.output(), "403");
}

}  // namespace
}  // namespace e2e
