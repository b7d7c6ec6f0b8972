// The mirror's pure parts: request routing, config parsing, prefetch lists,
// error bodies.
#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "registry-mirror/mirror_prefetch.hpp"
#include "registry-mirror/mirror_route.hpp"

namespace lockstep::registry {
namespace {

RouteTable table() {
  RouteTable t;
  t.upstreams = {"docker.io", "ghcr.io", "local"};
  t.default_upstream = "local";
  t.docker_hub = {"docker.io"};
  t.registries = {{"docker.io", "docker.io"}, {"ghcr.io", "ghcr.io"}, {"127.0.0.1:5000", "local"}};
  return t;
}

TEST(MirrorRoute, ManifestByTagGoesToTheDefault) {
  Route r = route_request("/v2/org/app/manifests/v1", table());
  EXPECT_EQ(r.endpoint, Endpoint::kManifest);
  EXPECT_EQ(r.upstream, "local");
  EXPECT_EQ(r.repo, "org/app");
  EXPECT_EQ(r.reference, "v1");
  EXPECT_FALSE(r.digest);
}

TEST(MirrorRoute, NsParameterPicksTheUpstreamAndAddsLibraryOnDockerHub) {
  Route r = route_request("/v2/alpine/manifests/3.19?ns=docker.io", table());
  EXPECT_EQ(r.upstream, "docker.io");
  EXPECT_EQ(r.repo, "library/alpine");
  EXPECT_EQ(r.query, "");
}

TEST(MirrorRoute, PathPrefixPicksTheUpstream) {
  std::string d = "sha256:" + std::string(64, 'a');
  Route r = route_request("/v2/ghcr.io/org/app/blobs/" + d, table());
  EXPECT_EQ(r.endpoint, Endpoint::kBlob);
  EXPECT_EQ(r.upstream, "ghcr.io");
  EXPECT_EQ(r.repo, "org/app");
  ASSERT_TRUE(r.digest);
  EXPECT_EQ(r.digest->str(), d);
}

TEST(MirrorRoute, NsNamesAnUpstreamByItsRegistryDomainAndKeepsOtherQueryParameters) {
  Route r = route_request("/v2/app/tags/list?ns=127.0.0.1%3A5000&n=10&last=a", table());
  EXPECT_EQ(r.endpoint, Endpoint::kTagsList);
  EXPECT_EQ(r.upstream, "local");
  EXPECT_EQ(r.repo, "app");
  EXPECT_EQ(r.query, "n=10&last=a");
  EXPECT_EQ(r.unknown_registry, "");
}

TEST(MirrorRoute, PathPrefixMayNameTheRegistryOfAnUpstream) {
  RouteTable t = table();
  t.upstreams.push_back("hub");
  t.registries.emplace_back("registry.example:5000", "hub");
  Route r = route_request("/v2/registry.example:5000/org/app/manifests/v1", t);
  EXPECT_EQ(r.endpoint, Endpoint::kManifest);
  EXPECT_EQ(r.upstream, "hub");
  EXPECT_EQ(r.repo, "org/app");
  // A first component that names no upstream stays part of the repository...
  r = route_request("/v2/org/app/manifests/v1", t);
  EXPECT_EQ(r.upstream, "local");
  EXPECT_EQ(r.repo, "org/app");
  // ...unless it is a registry, as references name them, that none serves.
  for (const char* registry : {"other.example", "host:5000", "localhost"}) {
    r = route_request(std::string("/v2/") + registry + "/app/manifests/v1", t);
    EXPECT_EQ(r.endpoint, Endpoint::kNotFound) << registry;
    EXPECT_EQ(r.unknown_registry, registry);
  }
}

TEST(MirrorRoute, UnknownNsIsRefusedNotSentToTheDefault) {
  for (const char* target : {"/v2/app/manifests/v1?ns=quay.io", "/v2/_catalog?ns=quay.io",
                             "/v2/ghcr.io/app/manifests/v1?ns=quay.io"}) {
    Route r = route_request(target, table());
    EXPECT_EQ(r.endpoint, Endpoint::kNotFound) << target;
    EXPECT_EQ(r.unknown_registry, "quay.io") << target;
    EXPECT_EQ(r.upstream, "") << target;
  }
  // /v2/ itself is the API check every client makes first, whatever ?ns= says.
  EXPECT_EQ(route_request("/v2/?ns=quay.io", table()).endpoint, Endpoint::kBase);
}

TEST(MirrorRoute, SpecialEndpointsAndInvalidNames) {
  EXPECT_EQ(route_request("/v2/", table()).endpoint, Endpoint::kBase);
  EXPECT_EQ(route_request("/v2", table()).endpoint, Endpoint::kBase);
  EXPECT_EQ(route_request("/metrics", table()).endpoint, Endpoint::kMetrics);
  EXPECT_EQ(route_request("/v2/_catalog?n=5", table()).endpoint, Endpoint::kCatalog);
  EXPECT_EQ(route_request("/v2/app/blobs/uploads/", table()).endpoint, Endpoint::kUnsupported);
  EXPECT_EQ(route_request("/v2/App/manifests/v1", table()).endpoint, Endpoint::kNotFound);
  EXPECT_EQ(route_request("/v2/a//b/manifests/v1", table()).endpoint, Endpoint::kNotFound);
  EXPECT_EQ(route_request("/other", table()).endpoint, Endpoint::kNotFound);
}

TEST(MirrorRoute, BadBytesAndReferencesAreRefusedBeforeRouting) {
  Route r = route_request("/v2/o\xC1/manifests/v1", table());
  EXPECT_EQ(r.endpoint, Endpoint::kBadRequest);
  EXPECT_EQ(r.error_code, "NAME_INVALID");
  EXPECT_EQ(r.error_message,
            "the request target holds byte 0xC1 at offset 5: it must be printable ASCII "
            "(percent-encode the rest)");
  r = route_request("/v2/app/manifests/v1?ns=%C1", table());
  EXPECT_EQ(r.endpoint, Endpoint::kBadRequest);
  EXPECT_EQ(r.error_code, "NAME_INVALID");
  r = route_request("/v2/app/manifests/../../../tmp/x", table());
  EXPECT_EQ(r.endpoint, Endpoint::kBadRequest);
  EXPECT_EQ(r.error_code, "TAG_INVALID");
  EXPECT_EQ(r.error_message, "invalid tag '../../../tmp/x'");
  r = route_request("/v2/app/manifests/sha256:../x", table());
  EXPECT_EQ(r.error_code, "DIGEST_INVALID");
  EXPECT_EQ(route_request("/v2/app/manifests/v1.2_rc-3", table()).endpoint, Endpoint::kManifest);
  EXPECT_EQ(route_request("/v2/app/manifests/sha512:AbC=_-", table()).endpoint,
            Endpoint::kManifest);
  EXPECT_FALSE(valid_tag(std::string(129, 'a')));
  EXPECT_FALSE(valid_tag(".hidden"));
  EXPECT_FALSE(valid_digest_syntax("sha256+:abc"));
}

TEST(MirrorRoute, RangesAreOneRangeOfDecimalDigitsWithinTheBlob) {
  uint64_t first = 0, last = 0;
  ASSERT_TRUE(parse_byte_range("bytes=10-19", 100, first, last));
  EXPECT_EQ(first, 10u);
  EXPECT_EQ(last, 19u);
  ASSERT_TRUE(parse_byte_range("bytes=90-500", 100, first, last));
  EXPECT_EQ(last, 99u);
  ASSERT_TRUE(parse_byte_range("bytes=-30", 100, first, last));
  EXPECT_EQ(first, 70u);
  ASSERT_TRUE(parse_byte_range("bytes=5-", 100, first, last));
  EXPECT_EQ(last, 99u);
  EXPECT_FALSE(parse_byte_range("bytes=100-", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes=1-2,4-5", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes= 1-2", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes=+1-2", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes=5-3", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes=99999999999999999999-", 100, first, last));
  EXPECT_FALSE(parse_byte_range("bytes=0-1", 0, first, last));
}

TEST(MirrorConfig, DurationsAndSizes) {
  EXPECT_EQ(*parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(*parse_duration("5m"), std::chrono::seconds(300));
  EXPECT_EQ(*parse_duration("6h"), std::chrono::seconds(21600));
  EXPECT_EQ(*parse_duration("1d"), std::chrono::seconds(86400));
  EXPECT_EQ(*parse_duration("42"), std::chrono::seconds(42));
  EXPECT_EQ(parse_duration("5 minutes").error().message(),
            "invalid duration '5 minutes' (expected e.g. 30s, 5m, 6h, 1d)");
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_EQ(*parse_size("10k"), 10240u);
  EXPECT_EQ(*parse_size("200M"), 200u << 20);
  EXPECT_EQ(*parse_size("20GiB"), uint64_t{20} << 30);
  EXPECT_EQ(parse_size("lots").error().message(), "invalid size 'lots' (expected e.g. 512M, 20G)");
}

TEST(MirrorConfig, FlagsAndValidation) {
  auto u = parse_upstream_flag("docker.io=https://registry-1.docker.io/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->name, "docker.io");
  EXPECT_EQ(parse_upstream_flag("nourl").error().message(),
            "invalid --upstream 'nourl' (expected NAME=URL)");
  MirrorConfig cfg;
  ASSERT_TRUE(parse_listen("0.0.0.0:5001", cfg));
  EXPECT_EQ(cfg.listen_host, "0.0.0.0");
  EXPECT_EQ(cfg.listen_port, 5001);
  ASSERT_TRUE(parse_listen("[::1]:6000", cfg));
  EXPECT_EQ(cfg.listen_host, "::1");
  EXPECT_EQ(validate_mirror_config(cfg).error().message(),
            "mirror: no upstream configured (use --upstream NAME=URL)");
  cfg.upstreams.push_back(*u);
  cfg.state_dir = "/tmp/x";
  ASSERT_TRUE(validate_mirror_config(cfg));
  EXPECT_EQ(cfg.upstreams[0].url, "https://registry-1.docker.io");
  EXPECT_EQ(cfg.default_upstream, "docker.io");
  cfg.default_upstream = "quay.io";
  EXPECT_EQ(validate_mirror_config(cfg).error().message(),
            "mirror: default upstream 'quay.io' is not configured");
  cfg.default_upstream.clear();
  cfg.upstreams.push_back({"local", "ftp://x"});
  EXPECT_EQ(validate_mirror_config(cfg).error().message(),
            "mirror: upstream local: URL 'ftp://x' must start with http:// or https://");
}

TEST(MirrorConfig, YamlFileWithErrorsNamingTheKey) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "ls-mirror-cfg-");
  ASSERT_TRUE(dir);
  auto file = dir->path() / "mirror.yml";
  ASSERT_TRUE(write_file_atomic(file,
                                "listen: 127.0.0.1:5100\n"
                                "tag_ttl: 10m\n"
                                "max_size: 20G\n"
                                "upstreams:\n"
                                "  - name: docker.io\n"
                                "    url: https://registry-1.docker.io\n"
                                "    manifest_budget: 100\n"
                                "    budget_window: 6h\n"));
  MirrorConfig cfg;
  auto st = load_mirror_config(file, cfg);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(cfg.listen_port, 5100);
  EXPECT_EQ(cfg.tag_ttl, std::chrono::seconds(600));
  EXPECT_EQ(cfg.max_size, uint64_t{20} << 30);
  ASSERT_EQ(cfg.upstreams.size(), 1u);
  EXPECT_EQ(cfg.upstreams[0].manifest_budget, 100u);
  EXPECT_EQ(cfg.upstreams[0].budget_window, std::chrono::seconds(21600));

  ASSERT_TRUE(write_file_atomic(file, "upstreams:\n  - name: x\n"));
  EXPECT_EQ(load_mirror_config(file, cfg).error().message(),
            "mirror.yml: upstreams[0]: missing 'url'");
  ASSERT_TRUE(write_file_atomic(file, "tag_tll: 5m\n"));
  EXPECT_EQ(load_mirror_config(file, cfg).error().message(), "mirror.yml: tag_tll: unknown key");
}

TEST(MirrorPrefetch, ListSkipsCommentsAndNamesBadLines) {
  auto refs = parse_prefetch_list(
      "# base images\nalpine:3.19\n\n  ghcr.io/org/app@sha256:" + std::string(64, 'c') + "  \n",
      "images.txt");
  ASSERT_TRUE(refs) << refs.error().message();
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].name(), "docker.io/library/alpine");
  EXPECT_EQ((*refs)[1].domain, "ghcr.io");
  auto bad = parse_prefetch_list("alpine\nNot Valid\n", "images.txt");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().rfind("images.txt:2: invalid reference 'Not Valid'", 0), 0u)
      << bad.error().message();
}

TEST(MirrorErrors, SpecErrorBody) {
  EXPECT_EQ(error_body("BLOB_UNKNOWN", "blob unknown to registry"),
            "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown to registry\"}]}");
}

}  // namespace
}  // namespace lockstep::registry

namespace lockstep::registry {
namespace {

TEST(MirrorConfig, TheExampleConfigLoadsAndValidates) {
  MirrorConfig cfg;
  auto st =
      load_mirror_config(std::string(LOCKSTEP_SOURCE_DIR) + "/examples/mirror/mirror.yml", cfg);
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_TRUE(validate_mirror_config(cfg));
  EXPECT_EQ(cfg.default_upstream, "docker.io");
  ASSERT_EQ(cfg.upstreams.size(), 3u);
  EXPECT_EQ(cfg.upstreams[0].manifest_budget, 100u);
  EXPECT_TRUE(cfg.upstreams[2].insecure);
  EXPECT_EQ(cfg.max_size, uint64_t{50} << 30);
}

}  // namespace
}  // namespace lockstep::registry
