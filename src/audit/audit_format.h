// Presenting audit records to reviewers: a table, JSON lines, Kubernetes
// audit.k8s.io/v1 Events (for existing audit pipelines and SIEMs), and
// `kubegate audit show`'s plain-words answer to every reviewer question.
// Used by the CLI and by the gateway's REST API alike.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/audit_store.h"

namespace kubegate {

// Column table, newest first as given.
std::string AuditTable(const std::vector<AuditPair>& pairs);

// {"seq","hash","decision":{...},"result":{...}|null}
nlohmann::json AuditPairJson(const AuditPair& pair);

// One chain entry as exported: {"seq","prev_hash","hash","phase","record"},
// record being the hashed canonical JSON, parsed.
nlohmann::json AuditEntryJson(const AuditEntry& e);

// An audit.k8s.io/v1 Event at level Metadata; kubegate's facts (decision,
// rule, approval, approvers, scope, grant, recording, chain position) are
// annotations under "kubegate.io/".
nlohmann::json AuditK8sEvent(const AuditPair& pair);

// The record answered in words: who acted, what was asked, did it need
// approval and why, who approved and within what scope, what happened,
// where it sits in the chain.
std::string AuditExplain(const AuditPair& pair);

}  // namespace kubegate
