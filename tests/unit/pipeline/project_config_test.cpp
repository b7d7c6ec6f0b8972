// .lockstep.yml: settings and their located errors.
#include <gtest/gtest.h>

#include "pipeline/diagnostic.hpp"
#include "pipeline/project_config.hpp"

namespace lockstep::pipeline {
namespace {

std::string config_error(std::string_view yaml) {
  auto r = parse_project_config(yaml, ".lockstep.yml");
  EXPECT_FALSE(r) << yaml;
  if (r) return "";
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
  return std::string(first_line(r.error()));
}

TEST(ProjectConfig, ReadsEverySetting) {
  auto c = parse_project_config(R"(runs-on:
  ubuntu-latest: localhost/busybox:1.35
  self-hosted: 127.0.0.1:5000/ci/base:1
defaults:
  memory: 512m
  cpus: 1.5
  pids-limit: 256
  network: none
mirror: http://127.0.0.1:5001
userns: true
state-dir: /var/tmp/ls
)",
                                ".lockstep.yml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->platforms.size(), 2u);
  EXPECT_EQ(c->platforms.at("ubuntu-latest"), "localhost/busybox:1.35");
  EXPECT_EQ(c->defaults.memory_bytes, 512 * 1024 * 1024);
  EXPECT_EQ(c->defaults.cpus_milli, 1500);
  EXPECT_EQ(c->defaults.pids_limit, 256);
  EXPECT_EQ(c->defaults.network, "none");
  EXPECT_EQ(c->default_options, "--memory 512m --cpus 1.5 --pids-limit 256 --network none");
  EXPECT_EQ(c->mirror, "http://127.0.0.1:5001");
  EXPECT_EQ(c->state_dir, "/var/tmp/ls");
  EXPECT_TRUE(c->userns);
}

TEST(ProjectConfig, ReadsEgressInspection) {
  auto c = parse_project_config("egress:\n  inspect: true\n  ca: [a.pem, /etc/corp.pem]\n",
                                ".lockstep.yml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->egress_inspect);
  EXPECT_EQ(c->egress_ca, (std::vector<std::string>{"a.pem", "/etc/corp.pem"}));
  c = parse_project_config("egress:\n  ca: a.pem\n  inspect: true\n", ".lockstep.yml");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->egress_ca, std::vector<std::string>{"a.pem"});
  c = parse_project_config("egress:\n  allow: [\"*\"]\n", ".lockstep.yml");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->egress_inspect);  // off unless asked for
}

TEST(ProjectConfig, EmptyFileIsNoSettings) {
  auto c = parse_project_config("", ".lockstep.yml");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->platforms.empty());
  EXPECT_EQ(c->default_options, "");
}

TEST(ProjectConfig, ErrorsAreLocated) {
  EXPECT_EQ(config_error("run-on:\n  x: y\n"),
            ".lockstep.yml:1:1: unknown key 'run-on' (did you mean 'runs-on'?)");
  EXPECT_EQ(config_error("defaults:\n  memroy: 1g\n"),
            ".lockstep.yml:2:3: unknown key 'memroy' in 'defaults' (did you mean 'memory'?)");
  EXPECT_EQ(
      config_error("defaults:\n  memory: lots\n"),
      ".lockstep.yml:2:11: defaults.memory: invalid value 'lots' for '--memory': expected a size "
      "such as 512m or 1g");
  EXPECT_EQ(config_error("defaults:\n  network: overlay\n"),
            ".lockstep.yml:2:12: defaults.network: unsupported network 'overlay' for '--network' "
            "(lockstep supports egress, none and host)");
  EXPECT_EQ(config_error("runs-on: [a, b]\n"),
            ".lockstep.yml:1:10: 'runs-on' must map labels to images");
  EXPECT_EQ(config_error("userns: yes please\n"),
            ".lockstep.yml:1:9: 'userns' must be true or false, got 'yes please'");
  EXPECT_EQ(config_error("usrns: true\n"),
            ".lockstep.yml:1:1: unknown key 'usrns' (did you mean 'userns'?)");
  EXPECT_EQ(config_error("mirror: 127.0.0.1:5000\n"),
            ".lockstep.yml:1:9: 'mirror' must be an http:// or https:// URL, got '127.0.0.1:5000'");
  EXPECT_EQ(config_error("egress:\n  inspect: yes please\n"),
            ".lockstep.yml:2:12: 'egress.inspect' must be true or false, got 'yes please'");
  EXPECT_EQ(config_error("egress:\n  inspct: true\n"),
            ".lockstep.yml:2:3: unknown key 'inspct' in 'egress' (did you mean 'inspect'?)");
  EXPECT_EQ(config_error("egress:\n  inspect: true\n  ca: {a: b}\n"),
            ".lockstep.yml:3:7: 'egress.ca' (a file or a list of files) must be a string");
  EXPECT_EQ(config_error("egress:\n  inspect: true\n  ca: []\n"),
            ".lockstep.yml:3:7: 'egress.ca' is empty");
  EXPECT_EQ(config_error("egress:\n  ca: corp.pem\n"),
            ".lockstep.yml:2:7: 'egress.ca' applies only with 'egress.inspect: true'");
  std::string bad = config_error("runs-on:\n  x: [\n");
  EXPECT_EQ(bad.rfind(".lockstep.yml:", 0), 0u) << bad;
}

TEST(ProjectConfig, ErrorQuotesTheLine) {
  auto r = parse_project_config("mirror: x\n", ".lockstep.yml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("1 | mirror: x"), std::string::npos) << r.error().message();
}

TEST(ProjectConfig, MessagesAreOneLineOfText) {
  // Found by fuzzing: yaml-cpp names an unknown escape by its first byte,
  // which is not UTF-8 on its own.
  EXPECT_EQ(config_error("mirror: \"\\\xC3\xA9\"\n"),
            ".lockstep.yml:1:12: invalid YAML: unknown escape character: \xEF\xBF\xBD");
  EXPECT_EQ(config_error("runs-on:\n  x: \"a\\_b\"\n"),
            ".lockstep.yml:2:6: this string is not UTF-8 after its escapes: lockstep cannot read "
            "\\N and \\_ (write \\u0085 and \\u00A0)");
  EXPECT_EQ(config_error("mirror: \"a\\nb\"\n"),
            ".lockstep.yml:1:9: 'mirror' must be an http:// or https:// URL, got 'a\\nb'");
}

TEST(ProjectConfig, TextThatIsNotUtf8IsRefusedInOneLine) {
  auto r = parse_project_config("mirror: http://m\xC1\n", ".lockstep.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), ".lockstep.yml:1:17: invalid UTF-8 (byte 0xC1)");
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
}

}  // namespace
}  // namespace lockstep::pipeline
