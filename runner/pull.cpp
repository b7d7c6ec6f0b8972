#include "runner/pull.hpp"

#include <cstdio>
#include <mutex>

#include "registry-mirror/client.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::runner {

ImageResolver::PullFn make_pull_fn(cache::ImageStore& store,
                                   std::vector<std::string> insecure_registries) {
  return [&store, insecure = std::move(insecure_registries)](
             const std::string& text) -> Result<cache::ImageRecord> {
    LS_TRY_ASSIGN(registry::Reference ref, registry::Reference::parse(text));
    registry::ClientOptions options;
    options.insecure = insecure;
    LS_TRY_ASSIGN(registry::RegistryClient client, registry::RegistryClient::create(options));
    static std::mutex progress_mu;
    static registry::ProgressRenderer renderer(stderr, false);
    auto sink = [](const registry::ProgressEvent& e) {
      std::lock_guard lk(progress_mu);
      renderer.handle(e);
    };
    std::fprintf(stderr, "lockstep: pulling %s\n", ref.familiar().c_str());
    return client.pull(ref, cache::Platform{}, store, sink);
  };
}

}  // namespace lockstep::runner
