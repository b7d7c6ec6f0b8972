#include "pipeline/options.hpp"

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

ContainerOptions ok(std::string_view text) {
  auto r = parse_container_options(text);
  EXPECT_TRUE(r) << text << ": " << r.error().message();
  return r ? *r : ContainerOptions{};
}

std::string err(std::string_view text) {
  auto r = parse_container_options(text);
  EXPECT_FALSE(r) << text;
  return r ? std::string() : r.error().message();
}

TEST(ContainerOptions, LimitsAndNetwork) {
  ContainerOptions o = ok("--cpus 2 --memory 1g --memory-swap 2g --pids-limit 512 --network none");
  EXPECT_EQ(o.cpus_milli, 2000);
  EXPECT_EQ(o.memory_bytes, int64_t{1} << 30);
  EXPECT_EQ(o.memory_swap_bytes, int64_t{2} << 30);
  EXPECT_EQ(o.pids_limit, 512);
  EXPECT_EQ(o.network, "none");
  o = ok("--cpus=1.5 -m 512m --memory-swap=-1 --network=host");
  EXPECT_EQ(o.cpus_milli, 1500);
  EXPECT_EQ(o.memory_bytes, int64_t{512} << 20);
  EXPECT_EQ(o.memory_swap_bytes, -1);
  EXPECT_EQ(o.network, "host");
  EXPECT_EQ(ok("--cpus 0.25").cpus_milli, 250);
  EXPECT_EQ(ok("--cpus .5").cpus_milli, 500);
  EXPECT_EQ(ok("").cpus_milli, std::nullopt);
}

TEST(ContainerOptions, ProcessSettings) {
  ContainerOptions o =
      ok("--user 1000:1000 --env A=1 -e 'B=two words' --env=C= -w /src --workdir=/build "
         "--cap-add net_admin --cap-drop CAP_CHOWN --hostname box --entrypoint /bin/sh");
  EXPECT_EQ(o.user, "1000:1000");
  EXPECT_EQ(o.env, (EnvList{{"A", "1"}, {"B", "two words"}, {"C", ""}}));
  EXPECT_EQ(o.workdir, "/build");
  EXPECT_EQ(o.cap_add, std::vector<std::string>{"NET_ADMIN"});
  EXPECT_EQ(o.cap_drop, std::vector<std::string>{"CHOWN"});
  EXPECT_EQ(o.hostname, "box");
  EXPECT_EQ(o.entrypoint, "/bin/sh");
}

TEST(ContainerOptions, HealthChecks) {
  ContainerOptions o =
      ok("--health-cmd \"pg_isready -U \\\"postgres\\\"\" --health-interval 10s "
         "--health-timeout=1m30s --health-retries 5 --health-start-period 500ms");
  EXPECT_EQ(o.health.cmd, "pg_isready -U \"postgres\"");
  EXPECT_EQ(o.health.interval_ms, 10000);
  EXPECT_EQ(o.health.timeout_ms, 90000);
  EXPECT_EQ(o.health.retries, 5);
  EXPECT_EQ(o.health.start_period_ms, 500);
}

TEST(ContainerOptions, ErrorsNameTheOption) {
  EXPECT_EQ(err("--privileged"), "unknown option '--privileged' in container options");
  EXPECT_EQ(err("--cpus"), "option '--cpus' needs a value");
  EXPECT_EQ(err("--cpus two"),
            "invalid value 'two' for '--cpus': expected a positive number of CPUs such as 1.5 (at "
            "most 3 decimals)");
  EXPECT_EQ(err("--cpus 0"),
            "invalid value '0' for '--cpus': expected a positive number of CPUs such as 1.5 (at "
            "most 3 decimals)");
  EXPECT_EQ(err("--cpus 0.0001"),
            "invalid value '0.0001' for '--cpus': expected a positive number of CPUs such as 1.5 "
            "(at most 3 decimals)");
  EXPECT_EQ(err("--memory lots"),
            "invalid value 'lots' for '--memory': expected a size such as 512m or 1g");
  EXPECT_EQ(err("--memory 1q"),
            "invalid value '1q' for '--memory': expected a size such as 512m or 1g");
  EXPECT_EQ(err("--pids-limit many"),
            "invalid value 'many' for '--pids-limit': expected an integer");
  EXPECT_EQ(
      err("--network overlay"),
      "unsupported network 'overlay' for '--network' (lockstep supports egress, none and host)");
  EXPECT_EQ(ok("--network bridge").network, "egress");
  EXPECT_EQ(ok("--network egress").network, "egress");
  EXPECT_EQ(err("--env NOVALUE"), "invalid value 'NOVALUE' for '--env': expected NAME=VALUE");
  EXPECT_EQ(err("--workdir src"), "invalid value 'src' for '--workdir': expected an absolute path");
  EXPECT_EQ(err("--health-interval 10"),
            "invalid value '10' for '--health-interval': expected a duration such as 10s or 1m30s");
  EXPECT_EQ(err("--health-retries -1"),
            "invalid value '-1' for '--health-retries': expected a non-negative integer");
  EXPECT_EQ(err("alpine"),
            "unexpected argument 'alpine' in container options (options start with '-')");
  EXPECT_EQ(err("--env 'A=b"), "unterminated ' quote in container options");
  EXPECT_EQ(err("--env \"A=b"), "unterminated \" quote in container options");
}

TEST(ShellWords, QuotingAsAShell) {
  EXPECT_EQ(*split_shell_words("  a  'b c' \"d \\\"e\\\"\" f\\ g 'h'\"i\" "),
            (std::vector<std::string>{"a", "b c", "d \"e\"", "f g", "hi"}));
  EXPECT_EQ(*split_shell_words("''"), std::vector<std::string>{""});
  EXPECT_EQ(*split_shell_words("\"a\\nb\""), std::vector<std::string>{"a\\nb"});
  EXPECT_EQ(split_shell_words("a\\").error().message(), "a lone '\\' at the end");
}

TEST(Sizes, DockerUnits) {
  EXPECT_EQ(*parse_size("512"), 512);
  EXPECT_EQ(*parse_size("512b"), 512);
  EXPECT_EQ(*parse_size("64k"), 65536);
  EXPECT_EQ(*parse_size("64K"), 65536);
  EXPECT_EQ(*parse_size("1.5g"), int64_t{3} << 29);
  EXPECT_EQ(*parse_size("1gb"), int64_t{1} << 30);
  EXPECT_EQ(*parse_size("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(*parse_size("1t"), int64_t{1} << 40);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("g"));
  EXPECT_FALSE(parse_size("1.2.3m"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("1mm"));
  EXPECT_EQ(parse_size("1x").error().message(), "invalid size '1x'");
}

TEST(Durations, GoSyntax) {
  EXPECT_EQ(*parse_duration_ms("0"), 0);
  EXPECT_EQ(*parse_duration_ms("30s"), 30000);
  EXPECT_EQ(*parse_duration_ms("1h2m3s"), 3723000);
  EXPECT_EQ(*parse_duration_ms("1.5s"), 1500);
  EXPECT_EQ(*parse_duration_ms("250ms"), 250);
  EXPECT_EQ(*parse_duration_ms("1500us"), 2);
  EXPECT_FALSE(parse_duration_ms("10"));
  EXPECT_FALSE(parse_duration_ms("s"));
  EXPECT_FALSE(parse_duration_ms("5d"));
  EXPECT_EQ(parse_duration_ms("1y").error().message(), "invalid duration '1y'");
}

}  // namespace
}  // namespace lockstep::pipeline
