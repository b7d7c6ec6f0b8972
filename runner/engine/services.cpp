#include "runner/engine/services.hpp"

#include <fstream>
#include <mutex>
#include <sstream>

#include "pipeline/options.hpp"

namespace lockstep::runner {

namespace {

const Json* config_field(const Json& cfg, const char* key) {
  if (!cfg.contains("config") || !cfg["config"].is_object()) return nullptr;
  const Json& c = cfg["config"];
  if (!c.contains(key) || c[key].is_null()) return nullptr;
  return &c[key];
}

std::vector<std::string> strings_of(const Json* j) {
  std::vector<std::string> out;
  if (j && j->is_array())
    for (const auto& s : *j)
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

}  // namespace

std::string hosts_file(const std::vector<std::string>& service_names) {
  std::string names;
  for (const auto& n : service_names) names += " " + n;
  return "127.0.0.1\tlocalhost" + names + "\n::1\tlocalhost ip6-localhost ip6-loopback" + names +
         "\n";
}

HealthPolicy health_policy(const Json& image_config, const pipeline::ContainerOptions& o) {
  HealthPolicy p;
  if (const Json* hc = config_field(image_config, "Healthcheck")) {
    auto test = strings_of(hc->contains("Test") ? &(*hc)["Test"] : nullptr);
    if (!test.empty() && test[0] == "CMD-SHELL" && test.size() >= 2)
      p.argv = {"/bin/sh", "-c", test[1]};
    else if (!test.empty() && test[0] == "CMD")
      p.argv.assign(test.begin() + 1, test.end());
    auto ns = [&](const char* k, std::chrono::milliseconds& into) {
      if (hc->contains(k) && (*hc)[k].is_number_integer() && (*hc)[k].get<int64_t>() > 0)
        into = std::chrono::milliseconds((*hc)[k].get<int64_t>() / 1000000);
    };
    ns("Interval", p.interval);
    ns("Timeout", p.timeout);
    ns("StartPeriod", p.start_period);
    if (hc->contains("Retries") && (*hc)["Retries"].is_number_integer())
      p.retries = std::max(1, (*hc)["Retries"].get<int>());
  }
  if (o.health.cmd) {
    if (*o.health.cmd == "none")
      p.argv.clear();
    else
      p.argv = {"/bin/sh", "-c", *o.health.cmd};
  }
  if (o.health.interval_ms) p.interval = std::chrono::milliseconds(*o.health.interval_ms);
  if (o.health.timeout_ms) p.timeout = std::chrono::milliseconds(*o.health.timeout_ms);
  if (o.health.start_period_ms)
    p.start_period = std::chrono::milliseconds(*o.health.start_period_ms);
  if (o.health.retries) p.retries = static_cast<int>(std::max<int64_t>(1, *o.health.retries));
  return p;
}

std::pair<std::vector<std::string>, std::vector<std::string>> image_entrypoint_and_cmd(
    const Json& image_config) {
  return {strings_of(config_field(image_config, "Entrypoint")),
          strings_of(config_field(image_config, "Cmd"))};
}

std::vector<std::string> service_argv(const Json& image_config,
                                      const pipeline::ContainerOptions& o) {
  std::vector<std::string> entry = strings_of(config_field(image_config, "Entrypoint"));
  std::vector<std::string> cmd = strings_of(config_field(image_config, "Cmd"));
  if (o.entrypoint) {
    entry = {*o.entrypoint};
    // As docker: --entrypoint resets the image's Cmd too.
    cmd.clear();
  }
  entry.insert(entry.end(), cmd.begin(), cmd.end());
  return entry;
}

Service::~Service() {
  stop();
}

Status Service::start(executor::Executor& exec, const executor::ContainerSpec& spec,
                      std::vector<std::string> argv, std::vector<std::string> env) {
  if (argv.empty())
    return fail("service '" + name + "': image " + image +
                    " has no entrypoint or command; give one with --entrypoint in options",
                ErrorKind::kWorkflow);
  auto c = exec.start(spec);
  if (!c) return fail(std::move(c.error()).context("start service '" + name + "'"));
  container_ = std::move(*c);
  executor::ProcessSpec ps;
  ps.argv = std::move(argv);
  ps.env = std::move(env);
  main_ = std::thread([this, ps] {
    std::ofstream log(log_file, std::ios::app);
    std::mutex mu;
    auto sink = [&](executor::Stream s, std::string_view line,
                    std::chrono::system_clock::time_point) {
      std::lock_guard lk(mu);
      log << (s == executor::Stream::kStderr ? "E " : "O ") << line << '\n';
      log.flush();
    };
    auto r = container_->exec(ps, sink);
    exit_reason_ = r ? r->reason : r.error().message();
    exited_ = true;
  });
  return {};
}

std::string Service::log_tail(size_t lines) const {
  std::ifstream in(log_file);
  std::vector<std::string> all;
  for (std::string l; std::getline(in, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

Status Service::wait_healthy(const HealthPolicy& policy) {
  using clock = std::chrono::steady_clock;
  auto started = clock::now();
  if (policy.argv.empty()) {
    // No health check: healthy once its main process is up, unless it died at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (exited_)
      return fail("service '" + name + "' exited: " + exit_reason_ + "; log: " + log_tail(5));
    return {};
  }
  int failures = 0;
  std::string last_output;
  for (;;) {
    if (exited_)
      return fail("service '" + name + "' exited before it was healthy: " + exit_reason_ +
                  "; log: " + log_tail(5));
    executor::ProcessSpec ps;
    ps.argv = policy.argv;
    ps.timeout = policy.timeout;
    std::string output;
    auto sink = [&](executor::Stream, std::string_view line,
                    std::chrono::system_clock::time_point) {
      if (output.size() < 4096) output += std::string(line) + " ";
    };
    auto r = container_->exec(ps, sink);
    if (r && r->ok()) return {};
    last_output = r ? r->reason + (output.empty() ? "" : ": " + output) : r.error().message();
    bool in_start_period = clock::now() - started < policy.start_period;
    if (!in_start_period && ++failures >= policy.retries)
      return fail("service '" + name + "' did not become healthy after " +
                  std::to_string(failures) + " checks; last check: " + last_output +
                  "; log: " + log_tail(5));
    std::this_thread::sleep_for(policy.interval);
  }
}

void Service::stop() {
  if (main_.joinable()) {
    // cancel() only reaches an exec already running: repeat until the main
    // process (started on its own thread) has been seen to end.
    while (!exited_) {
      container_->cancel(std::chrono::seconds(2));
      for (int i = 0; i < 50 && !exited_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    main_.join();
  }
  if (container_) (void)container_->stop(std::chrono::seconds(5));
  container_.reset();
}

}  // namespace lockstep::runner
