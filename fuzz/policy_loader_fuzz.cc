// Fuzz target: the policy loader (YAML -> rules, with every check a policy
// file gets at load and by `kubegate policy check`), then one decision.
// Input: a policy file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "classify/request_info.h"
#include "identity/identity.h"
#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // policy files are small; the loader refuses nothing by size
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto policy = kubegate::Policy::Parse(yaml, "fuzz.yaml");
  if (!policy) return 0;
  (void)(*policy)->Check();
  kubegate::Identity who;
  who.user = "fuzz";
  who.kind = kubegate::IdentityKind::kAgent;
  auto info = kubegate::ClassifyRequest("POST", "/api/v1/namespaces/prod/pods/web/exec?command=sh");
  if (!info) return 0;
  kubegate::NamespaceLabels labels = {{"environment", "prod"}};
  (void)(*policy)->Evaluate({&who, &*info, false, [](std::string_view) { return std::optional<std::string>(); },
                             1'795'000'000'000, &labels});
  return 0;
}
