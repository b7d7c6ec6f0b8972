#pragma once
// Image references, parsed and normalised exactly as Docker does
// (github.com/distribution/reference grammar):
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [ domain "/" ] path
//   domain    := host [ ":" port ]     host: DNS name, IPv4, or [IPv6]
//   path      := component ( "/" component )*   component: [a-z0-9]+ joined by [_.] | __ | -+
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//
// The first path element is a domain only when it contains '.' or ':', is
// "localhost", or has an upper-case letter; otherwise the domain is
// docker.io. Official images get "library/" ("alpine" ->
// docker.io/library/alpine) and "index.docker.io" is spelled docker.io.
#include <optional>
#include <string>
#include <string_view>

#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::registry {

inline constexpr std::string_view kDockerHubDomain = "docker.io";
inline constexpr std::string_view kDockerHubApiHost = "registry-1.docker.io";

struct Reference {
  std::string domain;            // "docker.io", "ghcr.io", "127.0.0.1:5000", "[::1]:5000"
  std::string path;              // "library/alpine", "org/app"
  std::string tag;               // "" when none was given
  std::optional<Digest> digest;  // set for "name@sha256:..."

  // Errors are one line, kind kUsage:
  //   invalid reference 'Foo:bar': repository name must be lowercase
  static Result<Reference> parse(std::string_view text);

  // "docker.io/library/alpine"
  std::string name() const { return domain + "/" + path; }
  // Fully qualified: "docker.io/library/alpine:3.19@sha256:..." (no ":latest" added).
  std::string str() const;
  // As Docker prints it: "alpine:3.19", "ghcr.io/org/app@sha256:...".
  std::string familiar() const;
  // The tag, or "latest" when neither a tag nor a digest was given.
  std::string tag_or_latest() const { return tag.empty() && !digest ? "latest" : tag; }
  // What goes after /manifests/ in the API: the digest when pinned, else the tag.
  std::string api_reference() const { return digest ? digest->str() : tag_or_latest(); }
  // Host[:port] to talk to: registry-1.docker.io for docker.io, else the domain.
  std::string api_host() const;
  // Same repository, other tag or digest.
  Reference with_digest(const Digest& d) const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

// True for localhost, 127.0.0.0/8 and ::1 (with or without a port): the only
// registries spoken to over plain HTTP without being marked insecure.
bool is_loopback_registry(std::string_view domain);

// The distribution spec's grammar for a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
bool valid_tag(std::string_view tag);

}  // namespace lockstep::registry
