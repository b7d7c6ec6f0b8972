#pragma once
// How lockstep fetches an image that is not in the local store: from its
// registry, or through a pull-through mirror (`--mirror URL`,
// $LOCKSTEP_MIRROR, `mirror:` in .lockstep.yml).
//
// Through a mirror, every request of the pull goes to the mirror. Only a
// mirror that cannot be reached at all (no TCP connection, no HTTP answer)
// makes the pull go to the registry directly, with a one-line warning on
// stderr; an answer from the mirror, errors included (404, 429, 5xx), is
// final and its error is reported. Either way the image is stored and tagged
// under its real reference ("127.0.0.1:5000/app:v1"), never the mirror's.
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_store.hpp"
#include "common/error.hpp"
#include "registry-mirror/progress.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/engine/images.hpp"

namespace lockstep::runner {

// "http://host:port" or "https://host[:port]" with any trailing '/' removed;
// a bare "host:port" means http:// for loopback hosts and https:// otherwise.
// Errors are kUsage and name where the value came from: "--mirror 'ftp://x':
// expected http://HOST[:PORT] or https://HOST[:PORT]".
Result<std::string> normalize_mirror_url(const std::string& url, std::string_view what = "mirror");

struct PullSettings {
  std::vector<std::string> insecure_registries;
  std::string mirror;  // normalized URL, empty: pull from the registries
};

// One registry operation (`attempt(mirror_url)`, empty: direct) for an image
// of registry `domain`, honouring settings.mirror as described above.
template <class T>
Result<T> through_mirror(const PullSettings& settings, std::atomic<bool>& mirror_down,
                         const std::string& domain,
                         const std::function<Result<T>(const std::string&)>& attempt);

// One image pull honouring settings.mirror as described above. `mirror_down`
// is shared by the pulls of one command: once the mirror was found
// unreachable the later pulls go direct without waiting for it again (and
// without another warning).
Result<cache::ImageRecord> pull_image(const registry::Reference& ref,
                                      const cache::Platform& platform, cache::ImageStore& store,
                                      const PullSettings& settings, std::atomic<bool>& mirror_down,
                                      const registry::ProgressSink& progress);

// The pull function of `lockstep run` and `lockstep shell`: progress on
// stderr (one line per event: the job output owns stdout).
ImageResolver::PullFn make_pull_fn(cache::ImageStore& store,
                                   std::vector<std::string> insecure_registries,
                                   std::string mirror = {});

namespace detail {
// Whether `e`, from an attempt through the mirror, says the mirror did not
// answer at all (kUnreachable), as opposed to an answer from it.
bool mirror_unreachable(const Error& e);
// `e` with what the mirror means for it appended.
Error through_mirror_error(const Error& e, const std::string& mirror, const std::string& domain);
}  // namespace detail

template <class T>
Result<T> through_mirror(const PullSettings& settings, std::atomic<bool>& mirror_down,
                         const std::string& domain,
                         const std::function<Result<T>(const std::string&)>& attempt) {
  if (settings.mirror.empty() || mirror_down.load()) return attempt({});
  auto r = attempt(settings.mirror);
  if (r) return r;
  if (detail::mirror_unreachable(r.error())) {
    if (!mirror_down.exchange(true))
      std::fprintf(stderr, "lockstep: warning: %s; going to the registries directly\n",
                   r.error().message().c_str());
    return attempt({});
  }
  return fail(detail::through_mirror_error(r.error(), settings.mirror, domain));
}

}  // namespace lockstep::runner
