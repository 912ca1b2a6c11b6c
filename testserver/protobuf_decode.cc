#include "protobuf_decode.h"

#include <cstdint>
#include <map>

#include "common/text.h"

namespace kubegate::testserver {
namespace {

using json = nlohmann::json;

enum class Kind { kString, kBytes, kInt, kBool, kMessage, kMapString, kMapBytes, kRepeatedString };

struct Field {
  const char* name;
  Kind kind;
  const char* message = nullptr;  // for kMessage
};

using Schema = std::map<int, Field>;

const std::map<std::string, Schema>& Schemas() {
  static const std::map<std::string, Schema> kSchemas = {
      {"ObjectMeta",
       {{1, {"name", Kind::kString}}, {2, {"generateName", Kind::kString}}, {3, {"namespace", Kind::kString}},
        {5, {"uid", Kind::kString}}, {6, {"resourceVersion", Kind::kString}}, {7, {"generation", Kind::kInt}},
        {11, {"labels", Kind::kMapString}}, {12, {"annotations", Kind::kMapString}},
        {14, {"finalizers", Kind::kRepeatedString}}}},
      {"ConfigMap",
       {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {2, {"data", Kind::kMapString}},
        {3, {"binaryData", Kind::kMapBytes}}, {4, {"immutable", Kind::kBool}}}},
      {"Secret",
       {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {2, {"data", Kind::kMapBytes}}, {3, {"type", Kind::kString}},
        {4, {"stringData", Kind::kMapString}}, {5, {"immutable", Kind::kBool}}}},
      {"Namespace", {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {2, {"spec", Kind::kMessage, "NamespaceSpec"}}}},
      {"NamespaceSpec", {{1, {"finalizers", Kind::kRepeatedString}}}},
      // k8s.io/api core/v1 and authentication/v1 generated.proto.
      {"ServiceAccount",
       {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {4, {"automountServiceAccountToken", Kind::kBool}}}},
      {"TokenRequest",
       {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {2, {"spec", Kind::kMessage, "TokenRequestSpec"}}}},
      {"TokenRequestSpec",
       {{1, {"audiences", Kind::kRepeatedString}}, {3, {"boundObjectRef", Kind::kMessage, "BoundObjectReference"}},
        {4, {"expirationSeconds", Kind::kInt}}}},
      {"BoundObjectReference",
       {{1, {"kind", Kind::kString}}, {2, {"apiVersion", Kind::kString}}, {3, {"name", Kind::kString}},
        {4, {"uid", Kind::kString}}}},
      {"SelfSubjectAccessReview",
       {{1, {"metadata", Kind::kMessage, "ObjectMeta"}}, {2, {"spec", Kind::kMessage, "SelfSubjectAccessReviewSpec"}}}},
      {"SelfSubjectAccessReviewSpec",
       {{1, {"resourceAttributes", Kind::kMessage, "ResourceAttributes"}},
        {2, {"nonResourceAttributes", Kind::kMessage, "NonResourceAttributes"}}}},
      {"ResourceAttributes",
       {{1, {"namespace", Kind::kString}}, {2, {"verb", Kind::kString}}, {3, {"group", Kind::kString}},
        {4, {"version", Kind::kString}}, {5, {"resource", Kind::kString}}, {6, {"subresource", Kind::kString}},
        {7, {"name", Kind::kString}}}},
      {"NonResourceAttributes", {{1, {"path", Kind::kString}}, {2, {"verb", Kind::kString}}}},
  };
  return kSchemas;
}

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return at_ >= d_.size(); }
  std::optional<std::uint64_t> Varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64 && at_ < d_.size(); shift += 7) {
      auto b = static_cast<unsigned char>(d_[at_++]);
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
    return std::nullopt;
  }
  std::optional<std::string_view> Bytes() {
    auto n = Varint();
    if (!n || *n > d_.size() - at_) return std::nullopt;
    std::string_view s = d_.substr(at_, *n);
    at_ += *n;
    return s;
  }
  bool Skip(int wire) {
    switch (wire) {
      case 0: return Varint().has_value();
      case 1: at_ += 8; return at_ <= d_.size();
      case 2: return Bytes().has_value();
      case 5: at_ += 4; return at_ <= d_.size();
      default: return false;
    }
  }

 private:
  std::string_view d_;
  std::size_t at_ = 0;
};

std::optional<json> Decode(std::string_view data, const std::string& type, int depth);

std::optional<std::pair<std::string, std::string>> MapEntry(std::string_view entry) {
  Reader r(entry);
  std::string k, v;
  while (!r.done()) {
    auto tag = r.Varint();
    if (!tag) return std::nullopt;
    if ((*tag & 7) != 2) {
      if (!r.Skip(static_cast<int>(*tag & 7))) return std::nullopt;
      continue;
    }
    auto b = r.Bytes();
    if (!b) return std::nullopt;
    if ((*tag >> 3) == 1) k = std::string(*b);
    if ((*tag >> 3) == 2) v = std::string(*b);
  }
  return std::pair{k, v};
}

std::optional<json> Decode(std::string_view data, const std::string& type, int depth) {
  if (depth > 8) return std::nullopt;
  const Schema& schema = Schemas().at(type);
  json out = json::object();
  Reader r(data);
  while (!r.done()) {
    auto tag = r.Varint();
    if (!tag) return std::nullopt;
    int number = static_cast<int>(*tag >> 3);
    int wire = static_cast<int>(*tag & 7);
    auto it = schema.find(number);
    if (it == schema.end()) {
      if (!r.Skip(wire)) return std::nullopt;
      continue;
    }
    const Field& f = it->second;
    if (f.kind == Kind::kInt || f.kind == Kind::kBool) {
      auto v = r.Varint();
      if (!v) return std::nullopt;
      if (f.kind == Kind::kInt) out[f.name] = static_cast<std::int64_t>(*v);
      else out[f.name] = *v != 0;
      continue;
    }
    auto b = r.Bytes();
    if (!b) return std::nullopt;
    switch (f.kind) {
      case Kind::kString: out[f.name] = std::string(*b); break;
      case Kind::kBytes: out[f.name] = Base64Encode(*b); break;
      case Kind::kRepeatedString: out[f.name].push_back(std::string(*b)); break;
      case Kind::kMessage: {
        auto m = Decode(*b, f.message, depth + 1);
        if (!m) return std::nullopt;
        out[f.name] = *m;
        break;
      }
      case Kind::kMapString:
      case Kind::kMapBytes: {
        auto e = MapEntry(*b);
        if (!e) return std::nullopt;
        out[f.name][e->first] = f.kind == Kind::kMapBytes ? Base64Encode(e->second) : e->second;
        break;
      }
      default: break;
    }
  }
  return out;
}

}  // namespace

std::optional<json> DecodeKubernetesProtobuf(std::string_view body) {
  static constexpr std::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) return std::nullopt;
  Reader unknown(body.substr(4));
  std::string api_version, kind;
  std::string_view raw;
  while (!unknown.done()) {
    auto tag = unknown.Varint();
    if (!tag || (*tag & 7) != 2) return std::nullopt;
    auto b = unknown.Bytes();
    if (!b) return std::nullopt;
    if ((*tag >> 3) == 1) {
      Reader tm(*b);
      while (!tm.done()) {
        auto t = tm.Varint();
        if (!t || (*t & 7) != 2) return std::nullopt;
        auto v = tm.Bytes();
        if (!v) return std::nullopt;
        if ((*t >> 3) == 1) api_version = std::string(*v);
        if ((*t >> 3) == 2) kind = std::string(*v);
      }
    } else if ((*tag >> 3) == 2) {
      raw = *b;
    }
  }
  if (!Schemas().count(kind) || kind == "ObjectMeta") return std::nullopt;
  auto obj = Decode(raw, kind, 0);
  if (!obj) return std::nullopt;
  (*obj)["apiVersion"] = api_version;
  (*obj)["kind"] = kind;
  return obj;
}

}  // namespace kubegate::testserver
