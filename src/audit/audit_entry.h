// AuditEntry: one link of kubegate's tamper-evident audit chain, as the
// store keeps it. A request produces two entries: its decision (committed
// before anything is forwarded) and its result (appended on completion).
// Both carry the request id; `kubegate audit show ID` joins them.
//
// The hashed content is `canonical`: the record as JSON with sorted keys and
// no spaces. Every other column (actor, verb, ...) is an index copy derived
// from it by DeriveIndex, so `audit verify` can tell an edited index column
// from an edited record.
//
//   hash = SHA-256("kubegate-audit-v1\n" + seq + "\n" + prev_hash + "\n" + canonical)
//
// The first entry's prev_hash is kGenesisHash; after retention pruning the
// chain starts from a signed checkpoint (the anchor) instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace kubegate {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The columns a reviewer filters on, copied out of the canonical record.
struct AuditIndex {
  std::string request_id;
  std::string phase;  // "decision" or "result"
  std::int64_t time_ms = 0;
  std::string actor;  // the caller's user name ("" when unauthenticated)
  std::string kind;   // human / agent
  std::string verb;
  std::string api_group;
  std::string resource;
  std::string namespace_;
  std::string name;
  std::string decision;  // allow / deny / review
  std::string approval_id;
  std::string task;  // the per-task token's task ("" for other callers)
  std::vector<std::string> groups;
  std::vector<std::string> approvers;

  bool operator==(const AuditIndex&) const = default;
};

struct AuditEntry {
  std::int64_t seq = 0;  // assigned by the store on append, 1-based, gapless
  AuditIndex index;
  std::string canonical;
  std::string prev_hash;
  std::string hash;
};

// The head of the chain: the last appended entry (seq 0 and kGenesisHash
// when empty).
struct ChainHead {
  std::int64_t seq = 0;
  std::string hash = std::string(kGenesisHash);
};

// A signed statement "the chain's entry `seq` has hash `hash`", made
// periodically by the gateway; verifiable with the public key alone.
struct Checkpoint {
  std::int64_t seq = 0;
  std::string hash;
  std::int64_t time_ms = 0;
  std::string signature;   // base64 Ed25519 over CheckpointMessage()
  std::string public_key;  // PEM of the signing key
};

std::string CheckpointMessage(std::int64_t seq, std::string_view hash, std::int64_t time_ms);

std::string ChainHash(std::int64_t seq, std::string_view prev_hash, std::string_view canonical);

// JSON with sorted keys, no whitespace, invalid UTF-8 replaced.
std::string Canonicalize(const nlohmann::json& record);

// Reads the index columns out of a canonical record; fails if the record is
// not a JSON object with request_id, phase and time.
Result<AuditIndex> DeriveIndex(std::string_view canonical);
Result<AuditIndex> DeriveIndexFromRecord(const nlohmann::json& record);
// The approval columns (approval_id, approvers) from a decision record's
// "approval" value, as DeriveIndex reads them.
void IndexApproval(const nlohmann::json& approval, AuditIndex& x);

// Builds an entry (seq and hashes unset) from a record.
Result<AuditEntry> MakeEntry(const nlohmann::json& record);

}  // namespace kubegate
