// Verification of the audit chain, for `kubegate audit verify`: walks every
// entry from the chain's start (genesis, or the signed anchor left by
// retention) and reports the first problem with the entry's seq and
// request id:
//   - a missing entry (deleted): seq numbers are gapless;
//   - a broken link: prev_hash differs from the previous entry's hash;
//   - an edited record: the content no longer matches its hash;
//   - an edited index column: a filterable column differs from the record;
//   - a signed checkpoint that does not match, is forged, or lies beyond
//     the last entry (entries deleted from the end).
//   - a session recording that is missing, or does not match the hash its
//     result entry holds (when recording_dir is given).
// With trusted keys given, every checkpoint (and the anchor) must be signed
// by one of them, so a copy of the log can be checked elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_store.h"

namespace kubegate {

struct VerifyReport {
  bool ok = false;
  std::int64_t entries = 0;
  std::int64_t checkpoints = 0;
  std::int64_t recordings = 0;  // session recordings checked against their records
  std::int64_t first_seq = 0;
  std::int64_t last_seq = 0;
  bool anchored = false;  // starts from a retention checkpoint
  // The first problem, when !ok.
  std::int64_t problem_seq = 0;
  std::string problem_request_id;
  std::string problem;
};

VerifyReport VerifyAuditChain(AuditStore& store, const std::vector<std::string>& trusted_public_keys,
                              const std::string& recording_dir = "");

}  // namespace kubegate
