#pragma once
// RegistryClient: the OCI distribution API, client side (libcurl).
//
// Pull: resolve the reference -> manifest (an index or manifest list picks
// the requested platform) -> config -> layers, each blob streamed into the
// BlobStore while hashed; a blob is committed only when its bytes match its
// digest, and the image is registered with ImageStore::add_manifest last.
// Layers download in parallel (ClientOptions::parallel threads, each with its
// own connection); blobs already in the store are not fetched again.
//
// Transport: HTTPS with the system CAs; plain HTTP only for loopback
// registries (localhost, 127.0.0.0/8, ::1) and those in `insecure`.
// Bearer-token and Basic challenges are answered, anonymously or with
// credentials from Docker's config.json; tokens are cached per scope until
// they expire. Transport errors and 5xx are retried with exponential backoff,
// 429 waits for Retry-After (capped); an interrupted blob resumes with Range.
//
// A RegistryClient is used from one thread at a time (it parallelises
// internally).
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/image_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"
#include "registry-mirror/auth.hpp"
#include "registry-mirror/manifest.hpp"
#include "registry-mirror/progress.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::registry {

struct ClientOptions {
  // Registry domains ("host:port", as in references) spoken to over plain HTTP.
  std::vector<std::string> insecure;
  // A pull-through mirror ("http://host:port", no trailing slash) that every
  // request goes to instead of the registry, routed by path prefix:
  // /v2/<domain>/<path>/... (`lockstep mirror serve` finds the upstream by
  // that domain). A registry the mirror has no upstream for gets a 404 from
  // it, never another registry's content.
  std::string mirror;
  // Credentials; when unset, loaded from CredentialStore::default_path().
  std::optional<CredentialStore> credentials;
  // Attempts per request (transport errors, 5xx, 429). An interrupted blob
  // download that made progress starts its count again.
  int max_attempts = 4;
  std::chrono::milliseconds backoff_initial{250};  // doubled per attempt
  std::chrono::milliseconds backoff_max{8000};
  std::chrono::milliseconds retry_after_max{60000};  // cap for 429 Retry-After
  unsigned parallel = 4;                             // concurrent blob downloads
};

struct FetchedManifest {
  std::string media_type;
  std::string bytes;
  Digest digest;  // sha256 of bytes, checked against the reference and Docker-Content-Digest
};

struct ResolvedImage {
  std::optional<Digest> index;  // when the reference named an index / manifest list
  Digest manifest;              // the image manifest for the platform
  std::string media_type;       // of the image manifest
};

class RegistryClient {
 public:
  // Loads credentials when options.credentials is unset.
  static Result<RegistryClient> create(ClientOptions options = {});
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;
  ~RegistryClient();

  // GET of the manifest the reference names (its digest, else its tag).
  Result<FetchedManifest> get_manifest(const Reference& ref);
  // HEAD of the manifest: the digest the registry serves for the tag (an
  // index digest for multi-platform images), for the lockfile.
  Result<Digest> resolve_digest(const Reference& ref);
  // The platform's image manifest digest (and the index it came from).
  Result<ResolvedImage> resolve(const Reference& ref, const cache::Platform& platform);

  // Streams one blob into the store (verified); no-op when already present.
  Status fetch_blob(const Reference& repo, const Descriptor& blob, cache::BlobStore& store,
                    const ProgressSink& progress = {});

  // The whole pull; see the file comment. Tags the image as
  // "<domain>/<path>:<tag>" unless it was pulled by digest.
  Result<cache::ImageRecord> pull(const Reference& ref, const cache::Platform& platform,
                                  cache::ImageStore& images, const ProgressSink& progress = {});

  // Push side (tests, `image export --push`): a monolithic blob upload
  // (POST uploads/ then PUT ?digest=), skipped when the registry has it.
  Status push_blob(const Reference& repo, std::string_view bytes);
  // PUT of a manifest under ref's tag (or its digest); returns its digest.
  Result<Digest> push_manifest(const Reference& ref, std::string_view media_type,
                               std::string_view bytes);

 private:
  struct Impl;
  explicit RegistryClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::registry
