#include "policy/policy_holder.h"

#include <sys/stat.h>

namespace kubegate {

PolicyHolder::PolicyHolder(std::string path) : path_(std::move(path)), current_(Policy::AllowAll()) {}

std::string PolicyHolder::Stamp() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) +
         ":" + std::to_string(st.st_ino);
}

Result<bool> PolicyHolder::Load() {
  if (path_.empty()) return true;
  std::string stamp = Stamp();
  auto p = Policy::Load(path_);
  if (!p) return p.error();
  std::lock_guard lk(mu_);
  current_ = *p;
  stamp_ = stamp;
  return true;
}

ReloadOutcome PolicyHolder::MaybeReload(bool force) {
  ReloadOutcome out;
  if (path_.empty()) return out;
  std::string stamp = Stamp();
  {
    std::lock_guard lk(mu_);
    if (!force && stamp == stamp_) return out;
    stamp_ = stamp;  // a refused file is not re-read until it changes again
  }
  auto p = Policy::Load(path_);
  if (!p) {
    out.refused = true;
    out.message = "policy reload refused, the previous policy stays in force: " + p.error().message;
    return out;
  }
  std::lock_guard lk(mu_);
  current_ = *p;
  out.changed = true;
  out.message = "policy reloaded from " + path_ + " (" + std::to_string(current_->rules().size()) + " rules)";
  return out;
}

std::shared_ptr<const Policy> PolicyHolder::Current() const {
  std::lock_guard lk(mu_);
  return current_;
}

}  // namespace kubegate
