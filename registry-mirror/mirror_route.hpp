#pragma once
// Request routing for the mirror: which distribution API endpoint a request
// target names, and which upstream serves it. Pure functions, no I/O.
//
// Upstreams are chosen, in order, by containerd's "?ns=<registry>" query
// parameter, by a path prefix ("/v2/docker.io/library/alpine/manifests/3.19"),
// or the default. "?ns=" and the prefix name an upstream by its name or by
// its registry's domain. A registry that no upstream serves, named by "?ns="
// or by a prefix that looks like one ("quay.io", "host:5000", "localhost"),
// is refused (404), never sent to the default: that would answer for one
// registry with another's content.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/digest.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::registry {

enum class Endpoint {
  kBase,         // GET /v2/
  kCatalog,      // GET /v2/_catalog
  kMetrics,      // GET /metrics
  kManifest,     // /v2/<name>/manifests/<reference>
  kBlob,         // /v2/<name>/blobs/<digest>
  kTagsList,     // /v2/<name>/tags/list
  kUnsupported,  // a valid API path the mirror does not serve (uploads, ...)
  kBadRequest,   // refused before anything is looked up (Route::error_code, error_message)
  kNotFound,     // anything else
};

struct Route {
  Endpoint endpoint = Endpoint::kNotFound;
  std::string upstream;          // a configured upstream name
  std::string repo;              // repository path at that upstream ("library/alpine")
  std::string reference;         // tag or digest (manifests), digest (blobs)
  std::optional<Digest> digest;  // when reference is a digest
  std::string query;             // the query string without "?ns=" (tags/list, catalog paging)
  // The registry ("?ns=" or path prefix) no upstream serves (endpoint is
  // kNotFound).
  std::string unknown_registry;
  // kBadRequest: the distribution-spec error code and a message (400).
  std::string error_code;
  std::string error_message;
};

struct RouteTable {
  std::vector<std::string> upstreams;  // names
  std::string default_upstream;
  // Upstream names that are Docker Hub ("docker.io"): one-component
  // repositories gain "library/" there, as Docker clients expect.
  std::vector<std::string> docker_hub;
  // Registry domain -> upstream name, from each upstream's URL ("docker.io"
  // for Docker Hub), so an upstream whose name is not a domain is found too.
  std::vector<std::pair<std::string, std::string>> registries;
};

// Parses a request target ("/v2/a/b/manifests/latest?ns=docker.io").
// Refused (kBadRequest), so that no request byte reaches a file name, a JSON
// document or a message unchecked: a target with a byte that is not printable
// ASCII (a URI is ASCII; anything else is percent-encoded), a "?ns=" that
// decodes to one, and a manifest reference that is neither a tag nor a digest
// (it names the tag's record file: "../" must never get there).
Route route_request(std::string_view target, const RouteTable& table);

// The distribution spec's grammar: a digest is algorithm ":" encoded
// ("sha256:<hex>", "sha512:..."); a tag: valid_tag (reference.hpp).
bool valid_digest_syntax(std::string_view reference);

// A Range header value, "bytes=a-b", "bytes=a-" or "bytes=-n" (one range,
// decimal digits only), against a blob of `total` bytes: the inclusive
// [first, last] to send, last clamped to the end. False when malformed or
// unsatisfiable (the caller answers 416).
bool parse_byte_range(std::string_view value, uint64_t total, uint64_t& first, uint64_t& last);

// True for a repository name the distribution spec accepts.
bool valid_repo_name(std::string_view repo);

// The spec's error body: {"errors":[{"code":..,"message":..,"detail":..}]}.
std::string error_body(std::string_view code, std::string_view message,
                       std::string_view detail = {});

}  // namespace lockstep::registry
