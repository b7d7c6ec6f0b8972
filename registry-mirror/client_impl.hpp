#pragma once
// Private to the registry client's .cpp files.
#include "registry-mirror/client.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/transport.hpp"

namespace lockstep::registry {

struct RegistryClient::Impl {
  Impl(ClientOptions o, CredentialStore c)
      : options(std::move(o)), transport(options, std::move(c)) {}
  ClientOptions options;
  Transport transport;
  HttpSession http;  // the calling thread's connection; download threads make their own

  Result<FetchedManifest> get_manifest(HttpSession& s, const Reference& ref);
  Status fetch_blob(HttpSession& s, const Reference& repo, const Descriptor& blob,
                    cache::BlobStore& store, const ProgressSink& progress,
                    const std::atomic<bool>* cancel);
};

}  // namespace lockstep::registry
