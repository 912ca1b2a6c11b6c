#include "tls/pki.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace kubegate {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

std::string BioText(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string KeyPem(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  return BioText(b.get());
}

std::string CertPem(X509* c) {
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), c);
  return BioText(b.get());
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

Cert NewCert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& orgs, int days) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const std::string& o : orgs) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

bool LooksLikeIp(const std::string& h) {
  return h.find(':') != std::string::npos || h.find_first_not_of("0123456789.") == std::string::npos;
}

}  // namespace

Result<KeyPair> MakeCa(const std::string& common_name) {
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return Error::Internal("cannot generate CA key");
  Cert cert = NewCert(key.get(), common_name, {}, 3650);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  AddExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  AddExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return Error::Internal("cannot sign CA certificate");
  return KeyPair{CertPem(cert.get()), KeyPem(key.get())};
}

Result<KeyPair> IssueCert(const KeyPair& ca, const std::string& common_name, const std::vector<std::string>& orgs,
                          const std::vector<std::string>& hosts, bool client, int valid_days) {
  Bio cb(BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size())));
  Cert ca_cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  Bio kb(BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size())));
  PKey ca_key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!ca_cert || !ca_key) return Error::Internal("cannot read CA certificate or key");
  PKey key(EVP_EC_gen("P-256"));
  if (!key) return Error::Internal("cannot generate key");
  Cert cert = NewCert(key.get(), common_name, orgs, valid_days);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  AddExt(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExt(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  AddExt(cert.get(), ca_cert.get(), NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
  AddExt(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  if (!hosts.empty()) {
    std::string san;
    for (const std::string& h : hosts) {
      if (!san.empty()) san += ",";
      san += (LooksLikeIp(h) ? "IP:" : "DNS:") + h;
    }
    AddExt(cert.get(), ca_cert.get(), NID_subject_alt_name, san);
  }
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) return Error::Internal("cannot sign certificate");
  return KeyPair{CertPem(cert.get()), KeyPem(key.get())};
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::Internal("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<bool> WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error::Internal("cannot write " + tmp);
    out << data;
    if (!out.flush()) return Error::Internal("cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), mode);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Error::Internal("cannot rename " + tmp + ": " + ec.message());
  return true;
}

Result<GatewayPki> EnsureGatewayPki(const std::string& data_dir, const std::vector<std::string>& extra_hosts) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(data_dir) / "pki";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::Internal("cannot create " + dir.string() + ": " + ec.message());
  GatewayPki out{(dir / "ca.crt").string(), (dir / "server.crt").string(), (dir / "server.key").string(), false};
  std::string ca_key_file = (dir / "ca.key").string();
  if (fs::exists(out.ca_cert_file) && fs::exists(ca_key_file) && fs::exists(out.server_cert_file) &&
      fs::exists(out.server_key_file)) {
    return out;
  }
  auto ca = MakeCa("kubegate CA");
  if (!ca) return ca.error();
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  hosts.insert(hosts.end(), extra_hosts.begin(), extra_hosts.end());
  auto server = IssueCert(*ca, "kubegate", {}, hosts, false);
  if (!server) return server.error();
  for (auto [path, data, mode] : {std::tuple{ca_key_file, ca->key_pem, 0600u},
                                  std::tuple{out.ca_cert_file, ca->cert_pem, 0600u},
                                  std::tuple{out.server_key_file, server->key_pem, 0600u},
                                  std::tuple{out.server_cert_file, server->cert_pem, 0600u}}) {
    auto w = WriteFileAtomic(path, data, mode);
    if (!w) return w.error();
  }
  out.created = true;
  return out;
}

}  // namespace kubegate
