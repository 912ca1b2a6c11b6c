#include "audit/verify.h"

#include <algorithm>
#include <map>

#include "audit/recording_link.h"
#include "audit/signer.h"

namespace kubegate {
namespace {

constexpr std::size_t kPage = 5000;

std::string TrimPem(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Trusted(const std::vector<std::string>& keys, const std::string& pem) {
  if (keys.empty()) return true;
  for (const auto& k : keys) {
    if (TrimPem(k) == TrimPem(pem)) return true;
  }
  return false;
}

// "" when the checkpoint's signature is good and its key trusted.
std::string CheckSignature(const Checkpoint& c, const std::vector<std::string>& keys) {
  if (!Trusted(keys, c.public_key)) return "is signed by a key that is not trusted";
  if (!VerifySignature(c.public_key, CheckpointMessage(c.seq, c.hash, c.time_ms), c.signature)) {
    return "has an invalid signature";
  }
  return "";
}

// Which index column differs from the record, or "".
std::string EditedColumn(const AuditIndex& stored, const AuditIndex& derived) {
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (stored.request_id != derived.request_id) return "request_id";
  if (stored.phase != derived.phase) return "phase";
  if (stored.time_ms != derived.time_ms) return "time";
  if (stored.actor != derived.actor) return "user";
  if (stored.kind != derived.kind) return "kind";
  if (stored.verb != derived.verb) return "verb";
  if (stored.api_group != derived.api_group) return "api group";
  if (stored.resource != derived.resource) return "resource";
  if (stored.namespace_ != derived.namespace_) return "namespace";
  if (stored.name != derived.name) return "name";
  if (stored.decision != derived.decision) return "decision";
  if (stored.approval_id != derived.approval_id) return "approval id";
  if (stored.task != derived.task) return "task";
  if (sorted(stored.groups) != sorted(derived.groups)) return "groups";
  if (sorted(stored.approvers) != sorted(derived.approvers)) return "approvers";
  return "";
}

}  // namespace

VerifyReport VerifyAuditChain(AuditStore& store, const std::vector<std::string>& keys, const std::string& recording_dir) {
  VerifyReport r;
  auto fail = [&](std::int64_t seq, std::string request_id, std::string what) {
    r.ok = false;
    r.problem_seq = seq;
    r.problem_request_id = std::move(request_id);
    r.problem = std::move(what);
    return r;
  };
  std::int64_t expected = 1;
  std::string prev(kGenesisHash);
  auto anchor = store.AuditAnchor();
  if (!anchor) return fail(0, "", "cannot read the store: " + anchor.error().message);
  if (*anchor) {
    const Checkpoint& a = **anchor;
    if (auto bad = CheckSignature(a, keys); !bad.empty()) {
      return fail(a.seq, "", "the retention anchor (checkpoint at seq " + std::to_string(a.seq) + ") " + bad);
    }
    r.anchored = true;
    expected = a.seq + 1;
    prev = a.hash;
  }
  auto cps = store.Checkpoints();
  if (!cps) return fail(0, "", "cannot read the store: " + cps.error().message);
  std::map<std::int64_t, const Checkpoint*> by_seq;
  for (const auto& c : *cps) {
    if (auto bad = CheckSignature(c, keys); !bad.empty()) {
      return fail(c.seq, "", "the checkpoint at seq " + std::to_string(c.seq) + " " + bad);
    }
    by_seq[c.seq] = &c;
  }
  r.checkpoints = static_cast<std::int64_t>(cps->size());
  std::int64_t after = expected - 1;
  auto index_head = store.IndexHead();
  if (!index_head) return fail(0, "", "cannot read the store: " + index_head.error().message);
  while (true) {
    auto page = store.AuditRange(after, kPage);
    if (!page) return fail(after, "", "cannot read the store: " + page.error().message);
    if (page->empty()) break;
    // The filter index (written behind the log, up to its head) must say
    // what each record says, or queries would hide or invent entries.
    std::map<std::int64_t, AuditIndex> indexed;
    if (page->front().seq <= *index_head) {
      auto rows = store.IndexedRange(page->front().seq, std::min(page->back().seq, *index_head));
      if (!rows) return fail(after, "", "cannot read the store: " + rows.error().message);
      indexed = std::move(*rows);
    }
    for (const AuditEntry& e : *page) {
      const std::string& id = e.index.request_id;
      if (e.seq != expected) {
        return fail(e.seq, id,
                    e.seq > expected ? "entries " + std::to_string(expected) + ".." + std::to_string(e.seq - 1) +
                                           " are missing (deleted) before seq " + std::to_string(e.seq)
                                     : "seq " + std::to_string(e.seq) + " is out of order");
      }
      if (e.prev_hash != prev) {
        return fail(e.seq, id,
                    "broken link: seq " + std::to_string(e.seq) + " does not follow the hash of seq " +
                        std::to_string(e.seq - 1) + " (an entry before it was edited or replaced)");
      }
      if (ChainHash(e.seq, e.prev_hash, e.canonical) != e.hash) {
        return fail(e.seq, id, "seq " + std::to_string(e.seq) + " was edited: its content does not match its hash");
      }
      auto derived = DeriveIndex(e.canonical);
      if (!derived) return fail(e.seq, id, "seq " + std::to_string(e.seq) + " is unreadable: " + derived.error().message);
      if (auto col = EditedColumn(e.index, *derived); !col.empty()) {
        return fail(e.seq, id, "seq " + std::to_string(e.seq) + " was edited: its " + col +
                                   " column differs from the hashed record");
      }
      if (e.seq <= *index_head) {
        auto row = indexed.find(e.seq);
        if (row == indexed.end() || row->second.request_id.empty()) {
          return fail(e.seq, id, "seq " + std::to_string(e.seq) + " is missing from the filter index");
        }
        if (auto col = EditedColumn(row->second, *derived); !col.empty()) {
          return fail(e.seq, id, "the filter index of seq " + std::to_string(e.seq) + " was edited: its " + col +
                                     " differs from the hashed record");
        }
      }
      if (auto it = by_seq.find(e.seq); it != by_seq.end() && it->second->hash != e.hash) {
        return fail(e.seq, id, "the signed checkpoint at seq " + std::to_string(e.seq) + " does not match the entry");
      }
      if (!recording_dir.empty() && e.index.phase == "result") {
        if (std::string bad = CheckRecordingOf(e.canonical, recording_dir); !bad.empty()) {
          return fail(e.seq, id, "seq " + std::to_string(e.seq) + ": " + bad);
        }
        r.recordings += e.canonical.find("\"recording\"") != std::string::npos;
      }
      if (r.entries == 0) r.first_seq = e.seq;
      r.entries++;
      r.last_seq = e.seq;
      prev = e.hash;
      expected = e.seq + 1;
      after = e.seq;
    }
  }
  std::int64_t last = expected - 1;
  if (!by_seq.empty() && by_seq.rbegin()->first > last) {
    return fail(by_seq.rbegin()->first, "",
                "a signed checkpoint covers seq " + std::to_string(by_seq.rbegin()->first) +
                    " but the log ends at seq " + std::to_string(last) + ": entries were deleted from the end");
  }
  auto head = store.AuditHead();
  if (!head) return fail(last, "", "cannot read the store: " + head.error().message);
  if (head->seq != last || head->hash != prev) {
    return fail(last, "", "the chain head says seq " + std::to_string(head->seq) + " but the log ends at seq " +
                              std::to_string(last) + ": entries were deleted from the end");
  }
  if (*index_head > last) {
    return fail(last, "", "the filter index goes up to seq " + std::to_string(*index_head) + " but the log ends at seq " +
                              std::to_string(last));
  }
  r.ok = true;
  return r;
}

}  // namespace kubegate
