#include "egress/tls_inspect.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "common/fs.hpp"

namespace lockstep::egress {
namespace {

constexpr long kLifetime = 30L * 24 * 3600;
constexpr long kBackdate = 3600;  // clocks of jobs and hosts a little apart

// The last error OpenSSL queued, as text (and the queue cleared).
std::string ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A random positive 127-bit serial: no two certificates of any run share one.
bool random_serial(X509* cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  raw[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(raw, sizeof raw, nullptr);
  if (!bn) return false;
  bool ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok;
}

Result<std::string> to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio || PEM_write_bio_X509(bio, cert) != 1) {
    BIO_free(bio);
    return fail("write a certificate: " + ssl_error());
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

X509* new_cert(const std::string& cn, EVP_PKEY* key) {
  X509* cert = X509_new();
  if (!cert) return nullptr;
  X509_NAME* name = X509_NAME_new();
  bool ok = X509_set_version(cert, 2) == 1 && random_serial(cert) &&
            X509_gmtime_adj(X509_getm_notBefore(cert), -kBackdate) &&
            X509_gmtime_adj(X509_getm_notAfter(cert), kLifetime) &&
            X509_set_pubkey(cert, key) == 1 && name &&
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>("lockstep"), -1, -1,
                                       0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                       0) == 1 &&
            X509_set_subject_name(cert, name) == 1;
  X509_NAME_free(name);
  if (!ok) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                  unsigned int inlen, void*) {
  // Only HTTP/1.1 is relayed: a client that offers it gets it; one that
  // offers nothing else it could speak gets no ALPN at all (and speaks
  // HTTP/1.1 by default, or gives up).
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = 8;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

struct Inspection::Leaf {
  std::string pem;
  SSL_CTX* ctx = nullptr;
  ~Leaf() { SSL_CTX_free(ctx); }
};

std::string verify_error_text(long code) {
  return X509_verify_cert_error_string(code);
}

Result<std::shared_ptr<Inspection>> Inspection::create(
    const std::string& name, const std::vector<std::filesystem::path>& extra_roots) {
  std::shared_ptr<Inspection> in(new Inspection());
  in->name_ = name;
  in->ca_key_ = EVP_EC_gen("P-256");
  in->leaf_key_ = EVP_EC_gen("P-256");
  if (!in->ca_key_ || !in->leaf_key_) return fail("HTTPS inspection: make a key: " + ssl_error());
  X509* ca = new_cert(name, in->ca_key_);
  if (!ca) return fail("HTTPS inspection: make the CA certificate: " + ssl_error());
  in->ca_cert_ = ca;
  // A CA for server certificates only, and only one level deep.
  if (!add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(ca, ca, NID_subject_key_identifier, "hash") ||
      X509_set_issuer_name(ca, X509_get_subject_name(ca)) != 1 ||
      X509_sign(ca, in->ca_key_, EVP_sha256()) <= 0)
    return fail("HTTPS inspection: sign the CA certificate: " + ssl_error());
  LS_TRY_ASSIGN(in->ca_pem_, to_pem(ca));

  SSL_CTX* c = SSL_CTX_new(TLS_client_method());
  if (!c) return fail("HTTPS inspection: " + ssl_error());
  in->client_ = c;
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(c) != 1)
    return fail("HTTPS inspection: the host's trust store: " + ssl_error());
  X509_STORE* store = SSL_CTX_get_cert_store(c);
  for (const auto& f : extra_roots) {
    auto text = read_file(f);
    if (!text) return fail("egress.ca: read " + f.string() + ": " + text.error().message());
    BIO* bio = BIO_new_mem_buf(text->data(), static_cast<int>(text->size()));
    int n = 0;
    while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, x);
      X509_free(x);
      ++n;
    }
    BIO_free(bio);
    ERR_clear_error();  // the end of the file reads as an error
    if (n == 0) return fail("egress.ca: " + f.string() + " holds no PEM certificate");
  }
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(c, alpn, sizeof alpn);
  return in;
}

Inspection::~Inspection() {
  leaves_.clear();
  SSL_CTX_free(client_);
  X509_free(ca_cert_);
  EVP_PKEY_free(ca_key_);
  EVP_PKEY_free(leaf_key_);
}

Result<Inspection::Leaf*> Inspection::leaf(const std::string& host) {
  std::lock_guard lk(mu_);
  if (auto it = leaves_.find(host); it != leaves_.end()) return it->second.get();
  if (host.empty() || host.size() > 253)
    return fail("cannot make a certificate for '" + host + "'");
  // The CN is at most 64 characters; the SAN is what clients check.
  X509* cert = new_cert(host.size() <= 64 ? host : host.substr(0, 64), leaf_key_);
  if (!cert) return fail("HTTPS inspection: certificate for " + host + ": " + ssl_error());
  bool ip = is_ip(host);
  bool ok = X509_set_issuer_name(cert, X509_get_subject_name(ca_cert_)) == 1 &&
            add_ext(cert, ca_cert_, NID_basic_constraints, "critical,CA:FALSE") &&
            add_ext(cert, ca_cert_, NID_key_usage, "critical,digitalSignature") &&
            add_ext(cert, ca_cert_, NID_ext_key_usage, "serverAuth") &&
            add_ext(cert, ca_cert_, NID_authority_key_identifier, "keyid:always") &&
            add_ext(cert, ca_cert_, NID_subject_alt_name, (ip ? "IP:" : "DNS:") + host) &&
            X509_sign(cert, ca_key_, EVP_sha256()) > 0;
  if (!ok) {
    X509_free(cert);
    return fail("HTTPS inspection: sign the certificate for " + host + ": " + ssl_error());
  }
  auto l = std::make_unique<Leaf>();
  auto pem = to_pem(cert);
  l->ctx = SSL_CTX_new(TLS_server_method());
  ok = pem && l->ctx && SSL_CTX_use_certificate(l->ctx, cert) == 1 &&
       SSL_CTX_use_PrivateKey(l->ctx, leaf_key_) == 1 &&
       SSL_CTX_add1_chain_cert(l->ctx, ca_cert_) == 1;
  X509_free(cert);
  if (!ok) return fail("HTTPS inspection: server context for " + host + ": " + ssl_error());
  l->pem = std::move(*pem);
  SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION);
  SSL_CTX_set_alpn_select_cb(l->ctx, select_http11, nullptr);
  Leaf* raw = l.get();
  leaves_[host] = std::move(l);
  return raw;
}

Result<std::string> Inspection::leaf_pem(const std::string& host) {
  LS_TRY_ASSIGN(Leaf * l, leaf(host));
  return l->pem;
}

Result<ssl_ctx_st*> Inspection::server_context(const std::string& host) {
  LS_TRY_ASSIGN(Leaf * l, leaf(host));
  return l->ctx;
}

}  // namespace lockstep::egress
