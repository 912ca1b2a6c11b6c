#include "audit/audit_entry.h"

#include <charconv>

#include "audit/canonical_json.h"
#include "common/clock.h"
#include "common/digest.h"

namespace kubegate {
namespace {

std::string Str(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json* p = &j;
  for (const char* k : {a, b}) {
    if (!k) break;
    if (!p->is_object()) return "";
    auto it = p->find(k);
    if (it == p->end()) return "";
    p = &*it;
  }
  return p->is_string() ? p->get<std::string>() : "";
}

std::vector<std::string> StrList(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::string CheckpointMessage(std::int64_t seq, std::string_view hash, std::int64_t time_ms) {
  return "kubegate-audit-checkpoint-v1\n" + std::to_string(seq) + "\n" + std::string(hash) + "\n" +
         std::to_string(time_ms);
}

std::string ChainHash(std::int64_t seq, std::string_view prev_hash, std::string_view canonical) {
  // Hashed as the pieces of "kubegate-audit-v1\n<seq>\n<prev_hash>\n<canonical>",
  // without copying the record into one string first.
  char seq_text[24];
  auto [end, ec] = std::to_chars(seq_text, seq_text + sizeof seq_text, seq);
  (void)ec;  // 24 characters hold any int64
  return Sha256HexOf({"kubegate-audit-v1\n", std::string_view(seq_text, static_cast<std::size_t>(end - seq_text)),
                      "\n", prev_hash, "\n", canonical});
}

// Byte for byte what record.dump(-1, ' ', false, replace) writes (the test
// compares them), without its per-byte UTF-8 checks on the plain ASCII that
// records are almost entirely made of: about 11,000 instructions per
// request less with the audit on (bench/instructions_per_request.sh,
// docs/performance.md).
std::string Canonicalize(const nlohmann::json& record) {
  std::string out;
  out.reserve(4096);
  AppendCanonicalJson(record, out);
  return out;
}

Result<AuditIndex> DeriveIndex(std::string_view canonical) {
  nlohmann::json j = nlohmann::json::parse(canonical, nullptr, false);
  return DeriveIndexFromRecord(j);
}

Result<AuditIndex> DeriveIndexFromRecord(const nlohmann::json& j) {
  if (!j.is_object()) return Error::BadRequest("audit record is not a JSON object");
  AuditIndex x;
  x.request_id = Str(j, "request_id");
  x.phase = Str(j, "phase");
  std::string time = Str(j, x.phase == "result" ? "completed" : "received");
  if (x.request_id.empty() || (x.phase != "decision" && x.phase != "result")) {
    return Error::BadRequest("audit record lacks request_id or phase");
  }
  auto t = ParseRfc3339(time);
  if (!t) return Error::BadRequest("audit record has no valid time: " + t.error().message);
  x.time_ms = *t;
  if (x.phase == "result") return x;
  x.actor = Str(j, "identity", "user");
  x.kind = Str(j, "identity", "kind");
  x.task = Str(j, "identity", "task");
  if (auto it = j.find("identity"); it != j.end() && it->is_object() && it->contains("groups")) {
    x.groups = StrList((*it)["groups"]);
  }
  x.verb = Str(j, "request", "verb");
  x.api_group = Str(j, "request", "apiGroup");
  x.resource = Str(j, "request", "resource");
  x.namespace_ = Str(j, "request", "namespace");
  x.name = Str(j, "request", "name");
  x.decision = Str(j, "decision", "action");
  if (auto it = j.find("approval"); it != j.end()) IndexApproval(*it, x);
  return x;
}

void IndexApproval(const nlohmann::json& approval, AuditIndex& x) {
  if (!approval.is_object()) return;
  x.approval_id = Str(approval, "id");
  if (auto it = approval.find("approvers"); it != approval.end()) {
    for (const auto& a : *it) {
      if (a.is_object() && a.contains("user") && a["user"].is_string()) x.approvers.push_back(a["user"]);
    }
  }
}

Result<AuditEntry> MakeEntry(const nlohmann::json& record) {
  AuditEntry e;
  e.canonical = Canonicalize(record);
  // The record's strings went into the canonical text with invalid UTF-8
  // replaced; derive from the same text when the record had any, so the
  // index always matches what verification will derive.
  bool clean = e.canonical.find("\xEF\xBF\xBD") == std::string::npos;
  auto idx = clean ? DeriveIndexFromRecord(record) : DeriveIndex(e.canonical);
  if (!idx) return idx.error();
  e.index = std::move(*idx);
  return e;
}

}  // namespace kubegate
