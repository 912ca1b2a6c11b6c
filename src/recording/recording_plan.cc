#include "recording/recording_plan.h"

namespace kubegate {

std::optional<RecordingPlan> PlanRecording(const RecordingSettings& settings, const std::string& dir,
                                           const PolicyRule* rule, const RecordedSession& session) {
  const RequestInfo& info = *session.info;
  if (info.stream == StreamKind::kNone) return std::nullopt;
  const bool required = rule && rule->recording_required;
  if (!settings.enabled && !required) return std::nullopt;
  const bool pf = info.stream == StreamKind::kPortForward;
  RecordingPlan p;
  p.path = dir + "/" + session.request_id + (pf ? ".portforward.jsonl" : ".cast");
  p.required = required;
  p.header.request_id = session.request_id;
  p.header.kind = pf ? "portforward" : info.stream == StreamKind::kAttach ? "attach" : "exec";
  p.header.user = session.user;
  p.header.namespace_ = info.namespace_;
  p.header.pod = info.name;
  if (info.exec) {
    p.header.container = info.exec->container;
    p.header.command = info.exec->command;
    p.header.tty = info.exec->tty;
  }
  p.header.approval_id = session.approval_id;
  p.header.grant_id = session.grant_id;
  if (rule) {
    switch (rule->recording_stdin) {
      case PolicyRule::Stdin::kRecord: p.options.stdin_mode = StdinMode::kRecord; break;
      case PolicyRule::Stdin::kOmit: p.options.stdin_mode = StdinMode::kOmit; break;
      case PolicyRule::Stdin::kRedact: p.options.stdin_mode = StdinMode::kRedact; break;
    }
    p.options.portforward_payload = rule->recording_portforward_payload;
  }
  p.options.max_bytes = settings.max_bytes;
  return p;
}

}  // namespace kubegate
