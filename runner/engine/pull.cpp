#include "runner/engine/pull.hpp"

#include <cstdio>
#include <mutex>

#include "registry-mirror/client.hpp"

namespace lockstep::runner {

Result<std::string> normalize_mirror_url(const std::string& url, std::string_view what) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  auto bad = [&] {
    return fail(
        std::string(what) + " '" + url + "': expected http://HOST[:PORT] or https://HOST[:PORT]",
        ErrorKind::kUsage);
  };
  std::string host;
  if (u.rfind("http://", 0) == 0) {
    host = u.substr(7);
  } else if (u.rfind("https://", 0) == 0) {
    host = u.substr(8);
  } else if (u.find("://") == std::string::npos) {
    host = u;
    u = (registry::is_loopback_registry(host) ? "http://" : "https://") + host;
  } else {
    return bad();
  }
  if (host.empty() || host.find_first_of("/?#@ ") != std::string::npos) return bad();
  return u;
}

namespace {

Result<cache::ImageRecord> pull_once(const registry::Reference& ref,
                                     const cache::Platform& platform, cache::ImageStore& store,
                                     const PullSettings& settings, const std::string& mirror,
                                     const registry::ProgressSink& progress) {
  registry::ClientOptions options;
  options.insecure = settings.insecure_registries;
  options.mirror = mirror;
  LS_TRY_ASSIGN(registry::RegistryClient client, registry::RegistryClient::create(options));
  return client.pull(ref, platform, store, progress);
}

}  // namespace

namespace detail {

bool mirror_unreachable(const Error& e) {
  // Through a mirror every request goes to it: nothing answering is the mirror.
  return e.kind() == ErrorKind::kUnreachable;
}

Error through_mirror_error(const Error& e, const std::string& mirror, const std::string& domain) {
  // A 404 from the mirror is also what a registry it has no upstream for gets.
  std::string note = " (through mirror " + mirror;
  if (e.kind() == ErrorKind::kNotFound)
    note += "; a mirror without an upstream for registry " + domain + " answers 404 too";
  return Error(e.message() + note + ")", e.errnum(), e.kind());
}

}  // namespace detail

Result<cache::ImageRecord> pull_image(const registry::Reference& ref,
                                      const cache::Platform& platform, cache::ImageStore& store,
                                      const PullSettings& settings, std::atomic<bool>& mirror_down,
                                      const registry::ProgressSink& progress) {
  return through_mirror<cache::ImageRecord>(
      settings, mirror_down, ref.domain, [&](const std::string& mirror) {
        return pull_once(ref, platform, store, settings, mirror, progress);
      });
}

ImageResolver::PullFn make_pull_fn(cache::ImageStore& store,
                                   std::vector<std::string> insecure_registries,
                                   std::string mirror) {
  auto down = std::make_shared<std::atomic<bool>>(false);
  return [&store, down, insecure = std::move(insecure_registries),
          mirror = std::move(mirror)](const std::string& text) -> Result<cache::ImageRecord> {
    LS_TRY_ASSIGN(registry::Reference ref, registry::Reference::parse(text));
    PullSettings settings{insecure, {}};
    if (!mirror.empty()) {
      LS_TRY_ASSIGN(settings.mirror, normalize_mirror_url(mirror));
    }
    static std::mutex progress_mu;
    static registry::ProgressRenderer renderer(stderr, false);
    auto sink = [](const registry::ProgressEvent& e) {
      std::lock_guard lk(progress_mu);
      renderer.handle(e);
    };
    if (settings.mirror.empty() || down->load())
      std::fprintf(stderr, "lockstep: pulling %s\n", ref.familiar().c_str());
    else
      std::fprintf(stderr, "lockstep: pulling %s through mirror %s\n", ref.familiar().c_str(),
                   settings.mirror.c_str());
    return pull_image(ref, cache::Platform{}, store, settings, *down, sink);
  };
}

}  // namespace lockstep::runner
