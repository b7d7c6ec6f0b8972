// The run CA of HTTPS inspection: what it mints verifies for the host it
// names and no other, only under its own CA; a real handshake with a leaf
// negotiates HTTP/1.1 only; the key is never in anything it hands out.
#include "egress/tls_inspect.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/fs.hpp"

namespace lockstep::egress {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

X509Ptr parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return X509Ptr(x);
}

// X509_V_OK, or the verification error of `leaf` under `ca` for the TLS
// server purpose.
int verify(const std::string& ca_pem, const std::string& leaf_pem) {
  X509Ptr ca = parse(ca_pem), leaf = parse(leaf_pem);
  if (!ca || !leaf) return -1;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  int rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return rc;
}

TEST(Inspection, CaIsACaAndHoldsNoKey) {
  auto in = Inspection::create("lockstep run test CA");
  ASSERT_TRUE(in) << in.error().message();
  const std::string& pem = (*in)->ca_pem();
  EXPECT_NE(pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(pem.find("PRIVATE KEY"), std::string::npos);
  X509Ptr ca = parse(pem);
  ASSERT_TRUE(ca);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EVP_PKEY* pub = X509_get0_pubkey(ca.get());
  EXPECT_EQ(X509_verify(ca.get(), pub), 1);  // self-signed
  char cn[256];
  X509_NAME_get_text_by_NID(X509_get_subject_name(ca.get()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "lockstep run test CA");
  // Two runs, two CAs.
  auto other = Inspection::create("lockstep run test CA");
  ASSERT_TRUE(other);
  EXPECT_NE((*other)->ca_pem(), pem);
}

TEST(Inspection, LeafNamesItsHostOnlyAndVerifiesOnlyUnderItsCa) {
  auto in = Inspection::create("ca");
  ASSERT_TRUE(in);
  auto leaf = (*in)->leaf_pem("files.test");
  ASSERT_TRUE(leaf) << leaf.error().message();
  EXPECT_EQ(leaf->find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(verify((*in)->ca_pem(), *leaf), X509_V_OK);
  X509Ptr x = parse(*leaf);
  EXPECT_EQ(X509_check_host(x.get(), "files.test", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(x.get(), "other.test", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(x.get(), "a.files.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ca(x.get()), 0);

  auto other = Inspection::create("ca");
  ASSERT_TRUE(other);
  EXPECT_NE(verify((*other)->ca_pem(), *leaf), X509_V_OK);

  // Cached: the same certificate for the run.
  auto again = (*in)->leaf_pem("files.test");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *leaf);
  auto c1 = (*in)->server_context("files.test"), c2 = (*in)->server_context("files.test");
  ASSERT_TRUE(c1 && c2);
  EXPECT_EQ(*c1, *c2);
}

TEST(Inspection, AddressesGetIpSans) {
  auto in = Inspection::create("ca");
  ASSERT_TRUE(in);
  for (const char* ip : {"198.51.100.10", "2001:db8::10"}) {
    auto leaf = (*in)->leaf_pem(ip);
    ASSERT_TRUE(leaf) << ip;
    EXPECT_EQ(verify((*in)->ca_pem(), *leaf), X509_V_OK);
    X509Ptr x = parse(*leaf);
    EXPECT_EQ(X509_check_ip_asc(x.get(), ip, 0), 1) << ip;
    EXPECT_NE(X509_check_ip_asc(x.get(), "198.51.100.11", 0), 1) << ip;
  }
  EXPECT_FALSE((*in)->leaf_pem(""));
}

// Client and server through a BIO pair, in memory.
struct Handshake {
  bool ok = false;
  std::string alpn;
  long verify = -1;
};
Handshake handshake(SSL_CTX* server_ctx, const std::string& ca_pem, const std::string& host,
                    const std::vector<std::string>& alpn) {
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  X509Ptr ca = parse(ca_pem);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca.get());
  SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
  std::string protos;
  for (const auto& p : alpn) protos += static_cast<char>(p.size()) + p;
  if (!protos.empty())
    SSL_CTX_set_alpn_protos(cctx, reinterpret_cast<const unsigned char*>(protos.data()),
                            static_cast<unsigned>(protos.size()));
  SSL* c = SSL_new(cctx);
  SSL* s = SSL_new(server_ctx);
  SSL_ctrl(c, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           const_cast<char*>(host.c_str()));
  SSL_set1_host(c, host.c_str());
  BIO *cb = nullptr, *sb = nullptr;
  BIO_new_bio_pair(&cb, 0, &sb, 0);
  SSL_set_bio(c, cb, cb);
  SSL_set_bio(s, sb, sb);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  Handshake h;
  bool cdone = false, sdone = false;
  for (int i = 0; i < 100 && !(cdone && sdone); ++i) {
    if (!cdone) {
      int r = SSL_do_handshake(c);
      if (r == 1)
        cdone = true;
      else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
        break;
    }
    if (!sdone) {
      int r = SSL_do_handshake(s);
      if (r == 1)
        sdone = true;
      else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
        break;
    }
  }
  h.ok = cdone && sdone;
  h.verify = SSL_get_verify_result(c);
  const unsigned char* sel = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(c, &sel, &len);
  if (sel) h.alpn.assign(reinterpret_cast<const char*>(sel), len);
  SSL_free(c);
  SSL_free(s);
  SSL_CTX_free(cctx);
  return h;
}

TEST(Inspection, HandshakeWithALeafNegotiatesHttp11Only) {
  auto in = Inspection::create("ca");
  ASSERT_TRUE(in);
  auto ctx = (*in)->server_context("files.test");
  ASSERT_TRUE(ctx);
  auto h = handshake(*ctx, (*in)->ca_pem(), "files.test", {"h2", "http/1.1"});
  EXPECT_TRUE(h.ok);
  EXPECT_EQ(h.verify, X509_V_OK);
  EXPECT_EQ(h.alpn, "http/1.1");
  // A client that offers only h2 gets no ALPN: it speaks HTTP/1.1 or leaves.
  h = handshake(*ctx, (*in)->ca_pem(), "files.test", {"h2"});
  EXPECT_TRUE(h.ok);
  EXPECT_EQ(h.alpn, "");
  // The leaf of files.test is no good for another name.
  h = handshake(*ctx, (*in)->ca_pem(), "other.test", {});
  EXPECT_FALSE(h.ok);
  EXPECT_EQ(h.verify, X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST(Inspection, ExtraRootsAreReadOrNamed) {
  TempDir dir = *TempDir::create(std::filesystem::temp_directory_path(), "ls-inspect-");
  auto missing = Inspection::create("ca", {dir.path() / "none.pem"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(
      missing.error().message().rfind("egress.ca: read " + (dir.path() / "none.pem").string(), 0),
      0u)
      << missing.error().message();
  std::ofstream(dir.path() / "empty.pem") << "not a certificate\n";
  auto empty = Inspection::create("ca", {dir.path() / "empty.pem"});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(),
            "egress.ca: " + (dir.path() / "empty.pem").string() + " holds no PEM certificate");
  auto first = Inspection::create("ca");
  ASSERT_TRUE(first);
  std::ofstream(dir.path() / "ca.pem") << (*first)->ca_pem();
  auto with = Inspection::create("ca", {dir.path() / "ca.pem"});
  ASSERT_TRUE(with) << with.error().message();
  EXPECT_NE((*with)->client_context(), nullptr);
}

TEST(Inspection, VerifyErrorsReadAsOpenSsl) {
  EXPECT_EQ(verify_error_text(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            "unable to get local issuer certificate");
  EXPECT_EQ(verify_error_text(X509_V_ERR_HOSTNAME_MISMATCH), "hostname mismatch");
}

}  // namespace
}  // namespace lockstep::egress
