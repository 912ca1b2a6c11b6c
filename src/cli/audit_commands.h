// `kubegate audit ...`: reviewers' access to the audit log from the CLI.
//
//   kubegate audit --config F [--user U --verb delete --since 1h ...] [-o table|jsonl|json|k8s]
//   kubegate audit show ID --config F [-o text|json|k8s]
//   kubegate audit verify --config F [--public-key PEM]...
//   kubegate audit public-key --config F
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "common/result.h"
#include "config/config.h"
#include "audit/audit_store.h"

namespace kubegate {

struct AuditCli;

// Registers the subcommands on `app`; the returned object holds their
// options and must outlive parsing.
std::shared_ptr<AuditCli> AddAuditCommands(CLI::App& app);
// After parsing: runs the audit command if one was given. Returns the exit
// code, or -1 when no audit command was selected.
int RunAuditCommand(AuditCli& cli);

// The store named by a config (SQLite in data_dir unless store.postgres).
StoreConfig StoreConfigFor(const Config& config);
std::string SigningKeyPath(const Config& config);

}  // namespace kubegate
