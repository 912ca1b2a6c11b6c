#include "audit/canonical_json.h"

#include <charconv>
#include <cstring>
#include <iterator>

#include "common/text.h"

namespace kubegate {
namespace {

constexpr std::size_t kTypicalValueBytes = 512;

// nlohmann's own form of one value: sorted keys (its objects are std::map),
// no spaces, invalid UTF-8 replaced.
void DumpValue(const nlohmann::json& j, std::string& out) {
  out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Whether nlohmann writes `s` unchanged between quotes: bytes 0x20 to
// 0x7F other than '"' and '\\' (it escapes control characters; bytes above
// 0x7F go to its UTF-8 checks).
bool PlainAscii(std::string_view s) { return PlainJsonPrefix(s) == s.size(); }

template <typename Int>
void AppendInt(Int v, std::string& out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

void AppendCanonicalString(std::string_view s, std::string& out) {
  if (PlainAscii(s)) {
    std::size_t at = out.size();
    out.resize(at + s.size() + 2);
    char* p = out.data() + at;
    p[0] = '"';
    std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
  } else {
    DumpValue(nlohmann::json(std::string(s)), out);
  }
}

void AppendCanonicalJson(const nlohmann::json& j, std::string& out) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ',';
        first = false;
        AppendCanonicalString(it.key(), out);
        out += ':';
        AppendCanonicalJson(it.value(), out);
      }
      out += '}';
      break;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& v : j) {
        if (!first) out += ',';
        first = false;
        AppendCanonicalJson(v, out);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::string:
      AppendCanonicalString(j.get_ref<const std::string&>(), out);
      break;
    case nlohmann::json::value_t::number_integer:
      AppendInt(j.get<std::int64_t>(), out);
      break;
    case nlohmann::json::value_t::number_unsigned:
      AppendInt(j.get<std::uint64_t>(), out);
      break;
    case nlohmann::json::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      break;
    default:
      DumpValue(j, out);  // null, floating point
  }
}

CanonicalObject::CanonicalObject() { values_.reserve(kTypicalValueBytes); }

void CanonicalObject::Begin(std::string_view key) {
  if (count_ < kInlineMembers) {
    inline_[count_] = {key, values_.size(), 0};
  } else {
    overflow_.push_back({key, values_.size(), 0});
  }
  ++count_;
}

void CanonicalObject::End() { MemberAt(count_ - 1).end = values_.size(); }

void CanonicalObject::Add(std::string_view key, std::string_view s) {
  Begin(key);
  AppendCanonicalString(s, values_);
  End();
}

void CanonicalObject::AddInt(std::string_view key, std::int64_t v) {
  Begin(key);
  AppendInt(v, values_);
  End();
}

void CanonicalObject::AddUInt(std::string_view key, std::uint64_t v) {
  Begin(key);
  AppendInt(v, values_);
  End();
}

void CanonicalObject::AddBool(std::string_view key, bool v) {
  Begin(key);
  values_ += v ? "true" : "false";
  End();
}

void CanonicalObject::AddList(std::string_view key, const std::vector<std::string>& v) {
  Begin(key);
  values_ += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) values_ += ',';
    AppendCanonicalString(v[i], values_);
  }
  values_ += ']';
  End();
}

void CanonicalObject::AddJson(std::string_view key, const nlohmann::json& v) {
  Begin(key);
  AppendCanonicalJson(v, values_);
  End();
}

void CanonicalObject::AddObject(std::string_view key, const CanonicalObject& o) {
  Begin(key);
  o.AppendTo(values_);
  End();
}

void CanonicalObject::AppendTo(std::string& out) const {
  // Sorted by key with an insertion sort (records' objects are small), which
  // is stable: among equal keys the one added last sorts last and is the
  // one written.
  const Member* small[kInlineMembers * 2];
  std::vector<const Member*> large;
  const Member** order = small;
  if (count_ > std::size(small)) {
    large.resize(count_);
    order = large.data();
  }
  const std::size_t n = count_;
  for (std::size_t i = 0; i < n; ++i) {
    const Member* m = &MemberAt(i);
    std::size_t j = i;
    for (; j > 0 && m->key < order[j - 1]->key; --j) order[j] = order[j - 1];
    order[j] = m;
  }
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 1 < n && order[i + 1]->key == order[i]->key) continue;
    if (!first) out += ',';
    first = false;
    AppendCanonicalString(order[i]->key, out);
    out += ':';
    out.append(values_, order[i]->begin, order[i]->end - order[i]->begin);
  }
  out += '}';
}

std::string CanonicalObject::Text() const {
  std::string out;
  out.reserve(values_.size() + count_ * 16 + 2);
  AppendTo(out);
  return out;
}

}  // namespace kubegate
