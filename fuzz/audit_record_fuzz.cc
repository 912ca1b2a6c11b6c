// Fuzz target: what the audit stage does with untrusted input. A request's
// target and body become a decision record (body redaction included); the
// record's index derived while writing must equal the index verification
// derives from the stored canonical text, or `audit verify` would report an
// honest record as edited, and the canonical text must fit on one line of
// the audit journal. The record written straight to text must equal the
// canonical form of the reference layout (audit_record_reference.h). The
// target is also read as an audit API query.
// Input layout: TARGET '\n' CONTENT-TYPE '\n' BODY.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/audit_api.h"
#include "audit/audit_entry.h"
#include "audit/audit_record.h"
#include "audit/audit_record_reference.h"
#include "classify/go_url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kubegate;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t a = in.find('\n');
  if (a == std::string_view::npos) return 0;
  std::size_t b = in.find('\n', a + 1);
  std::string_view target = in.substr(0, a);
  std::string_view content_type = in.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1);
  std::string_view body = b == std::string_view::npos ? std::string_view() : in.substr(b + 1);

  auto info = ClassifyRequest("POST", target);
  Identity who;
  who.user = std::string(target.substr(0, 16));  // untrusted bytes in identity fields too
  who.groups = {std::string(content_type)};
  DecisionFacts f;
  f.request_id = "kg-fuzz";
  f.received_ms = 1'795'000'000'000;
  f.who = &who;
  f.method = "POST";
  f.target = std::string(target);
  f.kubectl_command = std::string(content_type);
  f.info = info ? &*info : nullptr;
  f.action = "allow";
  f.rule = "fuzz";
  f.request_body = RedactRequestBody(info ? info->resource : "", content_type, body);
  auto entry = BuildDecisionEntry(f);
  if (!entry) abort();  // every decision record must be storable
  // Written straight to canonical text: byte for byte the canonical form
  // of the layout built with a DOM before, with the same index.
  auto reference = MakeEntry(testing::ReferenceDecisionRecord(f));
  if (!reference || reference->canonical != entry->canonical || !(reference->index == entry->index)) abort();
  auto again = DeriveIndex(entry->canonical);
  if (!again || !(*again == entry->index)) abort();
  // The audit journal frames one entry per line: a canonical record never
  // holds a raw newline (audit/audit_journal.h).
  if (entry->canonical.find('\n') != std::string::npos) abort();

  if (auto t = ParseRequestTarget(target)) (void)ParseAuditApiRequest(t->path, t->raw_query, 0);
  return 0;
}
