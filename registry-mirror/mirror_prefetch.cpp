#include "registry-mirror/mirror_prefetch.hpp"

#include "common/digest.hpp"
#include "common/json.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/manifest.hpp"

namespace lockstep::registry {

Result<std::vector<Reference>> parse_prefetch_list(std::string_view text, std::string_view where) {
  std::vector<Reference> out;
  size_t line_no = 0, start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    ++line_no;
    start = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto ref = Reference::parse(line);
    if (!ref)
      return fail(std::string(where) + ":" + std::to_string(line_no) + ": " + ref.error().message(),
                  ErrorKind::kUsage);
    out.push_back(*ref);
    if (end == text.size()) break;
  }
  return out;
}

namespace {

struct Fetcher {
  std::string base;  // mirror URL
  HttpSession http;
  PrefetchResult result;

  std::string url(const Reference& ref, const std::string& kind, const std::string& what) const {
    return base + "/v2/" + ref.path + "/" + kind + "/" + what + "?ns=" + url_escape(ref.domain);
  }

  Result<HttpResponse> manifest(const Reference& ref, const std::string& what) {
    HttpRequest req;
    req.url = url(ref, "manifests", what);
    req.headers.push_back("Accept: " + manifest_accept_header());
    auto resp = http.perform(req);
    if (!resp)
      return fail(Error(resp.error()).context("prefetch " + ref.familiar() + " via " + base));
    if (resp->status != 200)
      return fail("prefetch " + ref.familiar() + ": manifest " + what + ": HTTP " +
                      std::to_string(resp->status) + " " + resp->body.substr(0, 200),
                  ErrorKind::kUnavailable);
    if (what.rfind("sha256:", 0) == 0 && sha256_of(resp->body).str() != what)
      return fail("prefetch " + ref.familiar() + ": manifest " + what + ": the mirror sent " +
                      sha256_of(resp->body).str(),
                  ErrorKind::kIntegrity);
    ++result.manifests;
    return resp;
  }

  Status blob(const Reference& ref, const Digest& d) {
    HttpRequest req;
    req.url = url(ref, "blobs", d.str());
    uint64_t n = 0;
    req.on_data = [&](const char*, size_t len) -> Status {
      n += len;
      return {};
    };
    auto resp = http.perform(req);
    if (!resp) return fail(Error(resp.error()).context("prefetch blob " + d.str()));
    if (resp->status != 200)
      return fail("prefetch " + ref.familiar() + ": blob " + d.str() + ": HTTP " +
                      std::to_string(resp->status),
                  ErrorKind::kUnavailable);
    ++result.blobs;
    result.bytes += n;
    return {};
  }
};

}  // namespace

Result<PrefetchResult> prefetch_through_mirror(const std::string& mirror_url,
                                               const std::vector<Reference>& refs,
                                               const cache::Platform& platform) {
  Fetcher f;
  f.base = mirror_url;
  while (!f.base.empty() && f.base.back() == '/') f.base.pop_back();
  for (const auto& ref : refs) {
    LS_TRY_ASSIGN(HttpResponse top, f.manifest(ref, ref.api_reference()));
    LS_TRY_ASSIGN(Json doc, parse_json(top.body, "manifest of " + ref.familiar()));
    LS_TRY_ASSIGN(std::string mt, manifest_media_type(top.header("content-type").value_or(""), doc,
                                                      ref.familiar()));
    if (is_index_media_type(mt)) {
      LS_TRY_ASSIGN(ImageIndex index, parse_index(doc, ref.familiar()));
      LS_TRY_ASSIGN(Descriptor pick, select_platform(index, platform, ref.familiar()));
      LS_TRY_ASSIGN(HttpResponse child, f.manifest(ref, pick.digest.str()));
      LS_TRY_ASSIGN(doc, parse_json(child.body, "manifest of " + ref.familiar()));
    }
    LS_TRY_ASSIGN(ImageManifest m, parse_image_manifest(doc, ref.familiar()));
    LS_TRY(f.blob(ref, m.config.digest));
    for (const auto& l : m.layers) LS_TRY(f.blob(ref, l.digest));
  }
  return f.result;
}

}  // namespace lockstep::registry
