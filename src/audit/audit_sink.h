// AuditSink: where a request's audit entries go. AuditLog is the real one
// (hash chain, group commit, fail closed); NullAuditSink keeps nothing and
// exists only for `serve --bench-disable-audit`.
//
//   sink.Submit(std::move(entry), [](const Result<bool>& committed) { ... });
#pragma once

#include <functional>
#include <utility>

#include "audit/audit_entry.h"
#include "common/result.h"

namespace kubegate {

class AuditSink {
 public:
  using Done = std::function<void(const Result<bool>&)>;
  virtual ~AuditSink() = default;
  // Queues `entry`. False, without calling `done`, when it was not taken
  // (queue full). `done` runs once the entry is committed or refused, on
  // any thread, and must not block.
  virtual bool Submit(AuditEntry entry, Done done = nullptr) = 0;
  // Submit without waking the writer: the caller promises a WakeWriter()
  // soon after (a worker calls it once per turn of its event loop), so a
  // burst of entries is one group commit and one wake-up, not one each.
  virtual bool SubmitLater(AuditEntry entry, Done done = nullptr) { return Submit(std::move(entry), std::move(done)); }
  // Has what SubmitLater queued committed: wakes the writer, or (AuditLog
  // with audit.fsync: interval) writes it on the calling thread, whose
  // `done`s then run here before it returns.
  virtual void WakeWriter() {}
  // Whether entries are kept at all (false: none need be built).
  virtual bool keeps_entries() const { return true; }
  // Whether the last write succeeded (readiness).
  virtual bool healthy() const = 0;
};

// Keeps nothing; every decision counts as committed.
class NullAuditSink final : public AuditSink {
 public:
  bool Submit(AuditEntry, Done done) override {
    if (done) done(true);
    return true;
  }
  bool keeps_entries() const override { return false; }
  bool healthy() const override { return true; }
};

}  // namespace kubegate
