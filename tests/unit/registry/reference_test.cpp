// Image reference parsing against Docker's normalisation rules.
#include <gtest/gtest.h>

#include "registry-mirror/reference.hpp"

namespace lockstep::registry {
namespace {

const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Valid {
  std::string input;
  std::string domain;
  std::string path;
  std::string tag;
  bool has_digest;
  std::string familiar;
};

TEST(Reference, ValidTable) {
  const Valid cases[] = {
      {"alpine", "docker.io", "library/alpine", "", false, "alpine"},
      {"alpine:3.19", "docker.io", "library/alpine", "3.19", false, "alpine:3.19"},
      {"library/alpine", "docker.io", "library/alpine", "", false, "alpine"},
      {"docker.io/alpine", "docker.io", "library/alpine", "", false, "alpine"},
      {"docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", false,
       "alpine:edge"},
      {"index.docker.io/alpine", "docker.io", "library/alpine", "", false, "alpine"},
      {"index.docker.io/user/app:v1", "docker.io", "user/app", "v1", false, "user/app:v1"},
      {"user/app", "docker.io", "user/app", "", false, "user/app"},
      {"user/team/app", "docker.io", "user/team/app", "", false, "user/team/app"},
      {"ghcr.io/org/app:1.2.3", "ghcr.io", "org/app", "1.2.3", false, "ghcr.io/org/app:1.2.3"},
      {"quay.io/coreos/etcd", "quay.io", "coreos/etcd", "", false, "quay.io/coreos/etcd"},
      {"localhost/app", "localhost", "app", "", false, "localhost/app"},
      {"localhost:5000/app:t", "localhost:5000", "app", "t", false, "localhost:5000/app:t"},
      {"127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "", false, "127.0.0.1:5000/a/b/c"},
      {"[::1]:5000/app", "[::1]:5000", "app", "", false, "[::1]:5000/app"},
      {"[2001:db8::1]/app", "[2001:db8::1]", "app", "", false, "[2001:db8::1]/app"},
      {"registry:5000/app", "registry:5000", "app", "", false, "registry:5000/app"},
      {"Registry.Example.com/app", "Registry.Example.com", "app", "", false,
       "Registry.Example.com/app"},
      {"UPPERHOST/app", "UPPERHOST", "app", "", false, "UPPERHOST/app"},
      {"my-registry.example.com:443/app", "my-registry.example.com:443", "app", "", false,
       "my-registry.example.com:443/app"},
      // localhost:5000 alone is docker.io/library/localhost with tag 5000, as in Docker.
      {"localhost:5000", "docker.io", "library/localhost", "5000", false, "localhost:5000"},
      {"localhost", "docker.io", "library/localhost", "", false, "localhost"},
      {"a", "docker.io", "library/a", "", false, "a"},
      {"a.b/c", "a.b", "c", "", false, "a.b/c"},
      {"foo_bar/baz", "docker.io", "foo_bar/baz", "", false, "foo_bar/baz"},
      {"foo__bar", "docker.io", "library/foo__bar", "", false, "foo__bar"},
      {"foo--bar", "docker.io", "library/foo--bar", "", false, "foo--bar"},
      {"foo-bar.baz_qux", "docker.io", "library/foo-bar.baz_qux", "", false, "foo-bar.baz_qux"},
      {"app:_tag", "docker.io", "library/app", "_tag", false, "app:_tag"},
      {"app:Tag.With-Caps_1", "docker.io", "library/app", "Tag.With-Caps_1", false,
       "app:Tag.With-Caps_1"},
      {"app@sha256:" + kHex, "docker.io", "library/app", "", true, "app@sha256:" + kHex},
      {"app:v1@sha256:" + kHex, "docker.io", "library/app", "v1", true, "app:v1@sha256:" + kHex},
      {"127.0.0.1:5000/app:v1@sha256:" + kHex, "127.0.0.1:5000", "app", "v1", true,
       "127.0.0.1:5000/app:v1@sha256:" + kHex},
      {"app:" + std::string(128, 't'), "docker.io", "library/app", std::string(128, 't'), false,
       "app:" + std::string(128, 't')},
      {"0/1", "docker.io", "0/1", "", false, "0/1"},
      {"xn--bcher-kva.example/app", "xn--bcher-kva.example", "app", "", false,
       "xn--bcher-kva.example/app"},
      {"test_com", "docker.io", "library/test_com", "", false, "test_com"},
      {"test.com:tag", "docker.io", "library/test.com", "tag", false, "test.com:tag"},
      {"test.com:5000", "docker.io", "library/test.com", "5000", false, "test.com:5000"},
      {"test.com/repo:tag", "test.com", "repo", "tag", false, "test.com/repo:tag"},
      {"test:5000/repo", "test:5000", "repo", "", false, "test:5000/repo"},
      {"test:5000/repo:tag", "test:5000", "repo", "tag", false, "test:5000/repo:tag"},
      {"lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", false,
       "lowercase:Uppercase"},
      {"foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", false, "foo_bar.com:8080"},
      {"foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", false,
       "foo/foo_bar.com:8080"},
      {"192.168.1.1", "docker.io", "library/192.168.1.1", "", false, "192.168.1.1"},
      {"192.168.1.1:tag", "docker.io", "library/192.168.1.1", "tag", false, "192.168.1.1:tag"},
      {"192.168.1.1/repo", "192.168.1.1", "repo", "", false, "192.168.1.1/repo"},
      {"192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", "", false, "192.168.1.1:5000/repo"},
      {"[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", false,
       "[2001:db8::1]:5000/repo:tag"},
      {"sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "", false,
       "sub-dom1.foo.com/bar/baz/quux"},
      {"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
       "test.example.com", false, "b.gcr.io/test.example.com/my-app:test.example.com"},
      {"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", false,
       "xn--n3h.com/myimage:xn--n3h.com"},
      {"registry.io/foo/project--id.module--name.ver---sion--name", "registry.io",
       "foo/project--id.module--name.ver---sion--name", "", false,
       "registry.io/foo/project--id.module--name.ver---sion--name"},
      {"docker.io/library/alpine", "docker.io", "library/alpine", "", false, "alpine"},
      {"docker.io/library/foo/bar", "docker.io", "library/foo/bar", "", false, "library/foo/bar"},
      {"localhost/library/app", "localhost", "library/app", "", false, "localhost/library/app"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto r = Reference::parse(c.input);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->domain, c.domain);
    EXPECT_EQ(r->path, c.path);
    EXPECT_EQ(r->tag, c.tag);
    EXPECT_EQ(r->digest.has_value(), c.has_digest);
    EXPECT_EQ(r->familiar(), c.familiar);
    // The canonical form parses back to the same reference.
    auto again = Reference::parse(r->str());
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, *r);
  }
}

TEST(Reference, InvalidTableWithExactMessages) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "invalid reference '': empty reference"},
      {"Foo:bar", "invalid reference 'Foo:bar': repository name must be lowercase"},
      {"Alpine", "invalid reference 'Alpine': repository name must be lowercase"},
      {"docker.io/User/app",
       "invalid reference 'docker.io/User/app': repository name must be lowercase"},
      {"example.com/App:1",
       "invalid reference 'example.com/App:1': repository name must be lowercase"},
      {kHex, "invalid reference '" + kHex +
                 "': a 64-character hexadecimal string is an image ID, not a name"},
      {"app:",
       "invalid reference 'app:': invalid tag '' (letters, digits, '_', '.' and '-', not "
       "starting with '.' or '-')"},
      {"app:.x",
       "invalid reference 'app:.x': invalid tag '.x' (letters, digits, '_', '.' and "
       "'-', not starting with '.' or '-')"},
      {"app:-x",
       "invalid reference 'app:-x': invalid tag '-x' (letters, digits, '_', '.' and "
       "'-', not starting with '.' or '-')"},
      {"app:" + std::string(129, 't'),
       "invalid reference 'app:" + std::string(129, 't') + "': tag is longer than 128 characters"},
      {"app@sha256:abc", "invalid reference 'app@sha256:abc': invalid digest 'sha256:abc'"},
      {"app@sha512:" + kHex + kHex, "invalid reference 'app@sha512:" + kHex + kHex +
                                        "': unsupported digest algorithm 'sha512' (only sha256)"},
      {"app@sha256:" + std::string(64, 'A'),
       "invalid reference 'app@sha256:" + std::string(64, 'A') +
           "': invalid digest 'sha256:" + std::string(64, 'A') + "'"},
      {"foo..bar",
       "invalid reference 'foo..bar': invalid repository name 'library/foo..bar' "
       "(lowercase letters and digits, separated by '.', '_', '__', '-' or '/')"},
      {"example.com:/app",
       "invalid reference 'example.com:/app': invalid registry host "
       "'example.com:'"},
      {"example.com:port/app",
       "invalid reference 'example.com:port/app': invalid registry host "
       "'example.com:port'"},
      {"-example.com/app",
       "invalid reference '-example.com/app': invalid registry host "
       "'-example.com'"},
      {"foo/",
       "invalid reference 'foo/': repository name must have at least one component in "
       "each path element"},
      {"example.com/",
       "invalid reference 'example.com/': repository name must have at least one "
       "component in each path element"},
      {"test:5000/Uppercase/lowercase:tag",
       "invalid reference 'test:5000/Uppercase/lowercase:tag': repository name must be lowercase"},
  };
  for (const auto& [in, msg] : cases) {
    SCOPED_TRACE(in);
    auto r = Reference::parse(in);
    ASSERT_FALSE(r) << r->str();
    EXPECT_EQ(r.error().message(), msg);
    EXPECT_EQ(r.error().kind(), ErrorKind::kUsage);
  }
}

TEST(Reference, InvalidGrammar) {
  const std::string cases[] = {
      "foo__-bar",
      "aa/asdf$$^/aa",
      "[2001:db8::1]",
      "[2001:db8::1]:tag",
      "::1/app",
      "[fe80::1%eth0]:5000/repo",
      "a/b:",
      "a:b@",
      ":tag",
      "@sha256:" + kHex,
      "repo:tag/x",
      "test:5000/repo:tag:tag2",
      "http://example.com/app",
      "example.com:5000:6000/app",
      "foo___bar",
      "foo._bar",
      "_foo",
      "foo_",
      "foo-",
      "-foo",
      ".foo",
      "foo.",
      "a//b",
      "/a",
      "a/b:tag:tag",
      "a@b",
      "a@",
      "a b",
      "a:b c",
      "[::1/app",
      "[]/app",
      "[zz]/app",
      "host:5000x/app",
      "foo/bar@sha256:" + kHex + "x",
      "app?x",
      "ex_ample.com/app",
  };
  for (const auto& in : cases) {
    auto r = Reference::parse(in);
    EXPECT_FALSE(r) << in << " parsed as " << r->str();
  }
}

TEST(Reference, NameLengthLimit) {
  // docker.io/ + library/ + name: the whole name may be 255 characters.
  std::string ok(255 - std::string("docker.io/library/").size(), 'a');
  EXPECT_TRUE(Reference::parse(ok));
  auto r = Reference::parse(ok + "a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "invalid reference '" + ok +
                                     "a': repository name must not be more than 255 characters");
}

TEST(Reference, ApiNamesAndDefaults) {
  auto r = Reference::parse("alpine");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->api_host(), "registry-1.docker.io");
  EXPECT_EQ(r->api_reference(), "latest");
  EXPECT_EQ(r->str(), "docker.io/library/alpine");
  auto d = Reference::parse("127.0.0.1:5000/app:v2@sha256:" + kHex);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->api_host(), "127.0.0.1:5000");
  EXPECT_EQ(d->api_reference(), "sha256:" + kHex);  // a digest wins over the tag
  EXPECT_EQ(d->tag_or_latest(), "v2");
  auto pinned = r->with_digest(d->digest.value());
  EXPECT_EQ(pinned.str(), "docker.io/library/alpine@sha256:" + kHex);
}

TEST(Reference, LoopbackRegistries) {
  for (const char* s : {"localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000",
                        "127.1.2.3:80", "[::1]", "[::1]:5000"})
    EXPECT_TRUE(is_loopback_registry(s)) << s;
  for (const char* s :
       {"docker.io", "128.0.0.1:5000", "10.0.0.1", "[::2]:5000", "localhost.com", "local"})
    EXPECT_FALSE(is_loopback_registry(s)) << s;
}

}  // namespace
}  // namespace lockstep::registry
