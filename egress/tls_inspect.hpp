#pragma once
// HTTPS inspection (docs/network.md, "Inspecting HTTPS"): a certificate
// authority made for one run, the leaf certificates it mints per host for
// the proxy's side of a job's TLS, and the context the proxy verifies
// origins with. The CA's private key exists only in this object's memory:
// nothing here writes it anywhere, and it goes with the run.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"

struct ssl_ctx_st;   // SSL_CTX
struct evp_pkey_st;  // EVP_PKEY
struct x509_st;      // X509

namespace lockstep::egress {

class Inspection {
 public:
  // A new CA (P-256, valid from an hour ago for 30 days) named `name`, and
  // the origin-verifying context: the host's trust store plus the PEM files
  // of `extra_roots` (a project's private CAs). A file that cannot be read or
  // holds no certificate is an error naming it.
  static Result<std::shared_ptr<Inspection>> create(
      const std::string& name, const std::vector<std::filesystem::path>& extra_roots = {});
  ~Inspection();
  Inspection(const Inspection&) = delete;
  Inspection& operator=(const Inspection&) = delete;

  // The CA certificate (PEM): what jobs are told to trust.
  const std::string& ca_pem() const { return ca_pem_; }

  // The leaf certificate for `host` (a DNS name, or an IPv4/IPv6 address,
  // which gets an IP SAN), minted once per run and cached; PEM.
  Result<std::string> leaf_pem(const std::string& host);

  // A server context presenting `host`'s leaf (TLS 1.2+, ALPN http/1.1
  // only). Owned here, cached per host; valid as long as this object.
  Result<ssl_ctx_st*> server_context(const std::string& host);

  // The client context for origins: peer verification against the trust
  // store above, TLS 1.2+, ALPN http/1.1. The caller sets the host name
  // to check on each connection.
  ssl_ctx_st* client_context() const { return client_; }

 private:
  Inspection() = default;
  struct Leaf;
  Result<Leaf*> leaf(const std::string& host);

  std::string name_;
  evp_pkey_st* ca_key_ = nullptr;
  x509_st* ca_cert_ = nullptr;
  std::string ca_pem_;
  evp_pkey_st* leaf_key_ = nullptr;  // one key for every leaf of the run
  ssl_ctx_st* client_ = nullptr;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Leaf>> leaves_;
};

// The reason OpenSSL gives for a failed certificate verification
// (X509_verify_cert_error_string), e.g. "unable to get local issuer
// certificate".
std::string verify_error_text(long code);

}  // namespace lockstep::egress
