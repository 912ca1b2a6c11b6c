// The canonical form of audit records: JSON with object members sorted by
// key (bytewise, as nlohmann's std::map objects are), no whitespace, and
// invalid UTF-8 replaced by U+FFFD, byte for byte what
// `json.dump(-1, ' ', false, error_handler_t::replace)` writes.
//
// CanonicalObject writes that form straight from the values, without a
// nlohmann DOM: the audit records of every request are written this way
// (audit_record.h), which costs a fraction of building and dumping a DOM
// (docs/performance.md, "Audit records written directly").
//
//   CanonicalObject o;
//   o.Add("verb", "get");
//   o.AddInt("v", 1);
//   std::string text = o.Text();   // {"v":1,"verb":"get"}
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubegate {

// Appends `j` in canonical form.
void AppendCanonicalJson(const nlohmann::json& j, std::string& out);
// Appends `s` as a canonical JSON string (quoted, escaped, invalid UTF-8
// replaced).
void AppendCanonicalString(std::string_view s, std::string& out);

// One JSON object, written in canonical form whatever order its members
// are added in. A key added twice keeps its last value (as assigning to a
// nlohmann object does). Keys are not copied: each must outlive the
// object (string literals, or strings of the values being written).
class CanonicalObject {
 public:
  CanonicalObject();
  void Add(std::string_view key, std::string_view s);
  void AddInt(std::string_view key, std::int64_t v);
  void AddUInt(std::string_view key, std::uint64_t v);
  void AddBool(std::string_view key, bool v);
  void AddList(std::string_view key, const std::vector<std::string>& v);
  void AddJson(std::string_view key, const nlohmann::json& v);
  void AddObject(std::string_view key, const CanonicalObject& o);
  void AppendTo(std::string& out) const;
  std::string Text() const;
  bool empty() const { return count_ == 0; }

 private:
  struct Member {
    std::string_view key;
    std::size_t begin;  // of the value, in values_
    std::size_t end;
  };
  // A record's objects have at most this many members (a decision record's
  // request has 16): they are kept in place, without an allocation of
  // their own; any more go to overflow_.
  static constexpr std::size_t kInlineMembers = 16;
  // Opens a member whose value the caller appends to values_.
  void Begin(std::string_view key);
  void End();
  const Member& MemberAt(std::size_t i) const {
    return i < kInlineMembers ? inline_[i] : overflow_[i - kInlineMembers];
  }
  Member& MemberAt(std::size_t i) { return i < kInlineMembers ? inline_[i] : overflow_[i - kInlineMembers]; }

  std::string values_;
  std::array<Member, kInlineMembers> inline_;
  std::vector<Member> overflow_;
  std::size_t count_ = 0;
};

}  // namespace kubegate
