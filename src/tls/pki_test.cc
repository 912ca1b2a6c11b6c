#include "tls/pki.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace kubegate {
namespace {

X509* ReadCert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return c;
}

TEST(Pki, IssuedCertVerifiesAgainstCaAndCarriesSubject) {
  auto ca = MakeCa("test CA");
  ASSERT_TRUE(ca);
  auto leaf = IssueCert(*ca, "robot", {"ops", "bots"}, {}, true);
  ASSERT_TRUE(leaf);
  X509* ca_cert = ReadCert(ca->cert_pem);
  X509* cert = ReadCert(leaf->cert_pem);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1);
  char cn[64];
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "robot");
  auto other_ca = MakeCa("other");
  X509* other = ReadCert(other_ca->cert_pem);
  X509_STORE* store2 = X509_STORE_new();
  X509_STORE_add_cert(store2, other);
  X509_STORE_CTX* ctx2 = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx2, store2, cert, nullptr);
  EXPECT_NE(X509_verify_cert(ctx2), 1);
  X509_STORE_CTX_free(ctx);
  X509_STORE_CTX_free(ctx2);
  X509_STORE_free(store);
  X509_STORE_free(store2);
  X509_free(ca_cert);
  X509_free(cert);
  X509_free(other);
}

TEST(Pki, GatewayPkiCreatedOnceThenReused) {
  auto dir = std::filesystem::temp_directory_path() / ("kg-pki-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto first = EnsureGatewayPki(dir.string(), {"gate.example"});
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->created);
  std::string ca1 = *ReadFile(first->ca_cert_file);
  auto second = EnsureGatewayPki(dir.string(), {});
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(*ReadFile(second->ca_cert_file), ca1);
  EXPECT_EQ(std::filesystem::status(dir / "pki" / "ca.key").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kubegate
