// PolicyHolder: the policy in force, swapped whole on reload. Readers take
// a shared_ptr snapshot per request, so a reload never changes a decision
// half-way and never drops a connection. A file that does not validate is
// refused and the old policy stays.
//
//   PolicyHolder holder("/etc/kubegate/policy.yaml");
//   if (auto ok = holder.Load(); !ok) { ...start-up error... }
//   auto p = holder.Current();                 // per request
//   holder.MaybeReload(/*force=*/false);       // on a timer (file changed?) and on SIGHUP (force)
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "policy/policy.h"

namespace kubegate {

struct ReloadOutcome {
  bool changed = false;  // a new policy is in force
  bool refused = false;  // the file changed but does not validate
  std::string message;   // for the log
};

class PolicyHolder {
 public:
  // Empty path: Policy::AllowAll(), never reloaded.
  explicit PolicyHolder(std::string path);

  Result<bool> Load();
  ReloadOutcome MaybeReload(bool force);
  std::shared_ptr<const Policy> Current() const;
  const std::string& path() const { return path_; }

 private:
  std::string Stamp() const;  // mtime and size, or "" when unreadable

  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> current_;
  std::string stamp_;
};

}  // namespace kubegate
