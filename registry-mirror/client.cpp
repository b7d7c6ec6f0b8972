#include "registry-mirror/client.hpp"

#include "registry-mirror/client_impl.hpp"

namespace lockstep::registry {
namespace {

constexpr size_t kMaxManifestBytes = 4u << 20;

}  // namespace

RegistryClient::RegistryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;
RegistryClient::~RegistryClient() = default;

Result<RegistryClient> RegistryClient::create(ClientOptions options) {
  CredentialStore creds;
  if (options.credentials) {
    creds = *options.credentials;
  } else {
    LS_TRY_ASSIGN(creds, CredentialStore::load(CredentialStore::default_path()));
  }
  return RegistryClient(std::make_unique<Impl>(std::move(options), std::move(creds)));
}

Result<FetchedManifest> RegistryClient::Impl::get_manifest(HttpSession& s, const Reference& ref) {
  HttpRequest req;
  req.url = transport.repo_url(ref) + "/manifests/" + ref.api_reference();
  req.headers.push_back("Accept: " + manifest_accept_header());
  req.max_body = kMaxManifestBytes;
  auto resp = transport.send_with_retries(s, ref, "pull", req);
  if (!resp) return fail(transport.wrap(ref, resp.error(), "manifest " + ref.familiar()));
  if (resp->status == 404)
    return fail(
        "image " + ref.familiar() + " not found in registry " + ref.domain + " (manifest unknown)",
        ErrorKind::kNotFound);
  if (resp->status != 200)
    return fail(Transport::http_error("manifest " + ref.familiar() + " from " + ref.domain, *resp));

  FetchedManifest m;
  m.digest = sha256_of(resp->body);
  if (ref.digest && *ref.digest != m.digest)
    return fail("manifest " + ref.familiar() + " from " + ref.domain + ": digest mismatch (got " +
                    m.digest.str() + ")",
                ErrorKind::kIntegrity);
  if (auto h = resp->header("docker-content-digest")) {
    auto claimed = Digest::parse(*h);
    if (claimed && *claimed != m.digest)
      return fail("manifest " + ref.familiar() + " from " + ref.domain +
                      ": Docker-Content-Digest " + claimed->str() + " does not match its bytes (" +
                      m.digest.str() + ")",
                  ErrorKind::kIntegrity);
  }
  std::string where = "manifest " + ref.familiar();
  auto doc = parse_json(resp->body, where);
  if (!doc) return fail(Error(doc.error()).set_kind(ErrorKind::kIntegrity));
  LS_TRY_ASSIGN(m.media_type,
                manifest_media_type(resp->header("content-type").value_or(""), *doc, where));
  m.bytes = std::move(resp->body);
  return m;
}

Result<FetchedManifest> RegistryClient::get_manifest(const Reference& ref) {
  return impl_->get_manifest(impl_->http, ref);
}

Result<Digest> RegistryClient::resolve_digest(const Reference& ref) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = impl_->transport.repo_url(ref) + "/manifests/" + ref.api_reference();
  req.headers.push_back("Accept: " + manifest_accept_header());
  auto resp = impl_->transport.send_with_retries(impl_->http, ref, "pull", req);
  if (!resp) return fail(impl_->transport.wrap(ref, resp.error(), "manifest " + ref.familiar()));
  if (resp->status == 404)
    return fail(
        "image " + ref.familiar() + " not found in registry " + ref.domain + " (manifest unknown)",
        ErrorKind::kNotFound);
  if (resp->status == 200) {
    if (auto h = resp->header("docker-content-digest")) {
      auto d = Digest::parse(*h);
      if (d && (!ref.digest || *ref.digest == *d)) return *d;
    }
  } else if (resp->status != 405) {
    return fail(Transport::http_error("manifest " + ref.familiar() + " from " + ref.domain, *resp));
  }
  // No usable digest header (or no HEAD support): fetch and hash the bytes.
  LS_TRY_ASSIGN(FetchedManifest m, impl_->get_manifest(impl_->http, ref));
  return m.digest;
}

Result<ResolvedImage> RegistryClient::resolve(const Reference& ref,
                                              const cache::Platform& platform) {
  LS_TRY_ASSIGN(FetchedManifest top, impl_->get_manifest(impl_->http, ref));
  ResolvedImage out;
  if (is_index_media_type(top.media_type)) {
    LS_TRY_ASSIGN(Json doc, parse_json(top.bytes, "index " + ref.familiar()));
    LS_TRY_ASSIGN(ImageIndex idx, parse_index(doc, "index " + ref.familiar()));
    LS_TRY_ASSIGN(Descriptor d, select_platform(idx, platform, ref.familiar()));
    out.index = top.digest;
    out.manifest = d.digest;
    out.media_type = d.media_type;
  } else {
    out.manifest = top.digest;
    out.media_type = top.media_type;
  }
  return out;
}

Status RegistryClient::fetch_blob(const Reference& repo, const Descriptor& blob,
                                  cache::BlobStore& store, const ProgressSink& progress) {
  return impl_->fetch_blob(impl_->http, repo, blob, store, progress, nullptr);
}

Status RegistryClient::push_blob(const Reference& repo, std::string_view bytes) {
  Transport& t = impl_->transport;
  const Digest d = sha256_of(bytes);
  const std::string base = t.repo_url(repo);
  const std::string what = "push blob " + d.str() + " to " + repo.name();
  auto check = [&](Result<HttpResponse>& r) -> Status {
    if (!r) return fail(t.wrap(repo, r.error(), what));
    return {};
  };
  HttpRequest head;
  head.method = "HEAD";
  head.url = base + "/blobs/" + d.str();
  auto h = t.send_with_retries(impl_->http, repo, "pull,push", head);
  LS_TRY(check(h));
  if (h->status == 200) return {};

  HttpRequest start;
  start.method = "POST";
  start.url = base + "/blobs/uploads/";
  auto s = t.send_with_retries(impl_->http, repo, "pull,push", start);
  LS_TRY(check(s));
  auto loc = s->header("location");
  if (s->status != 202 || !loc) return fail(Transport::http_error(what + " (start upload)", *s));
  std::string url = url_resolve(base, *loc);  // Location may be relative
  HttpRequest put;
  put.method = "PUT";
  put.url =
      url + (url.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_escape(d.str());
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body = bytes;
  auto p = t.send_with_retries(impl_->http, repo, "pull,push", put);
  LS_TRY(check(p));
  if (p->status != 201) return fail(Transport::http_error(what, *p));
  return {};
}

Result<Digest> RegistryClient::push_manifest(const Reference& ref, std::string_view media_type,
                                             std::string_view bytes) {
  Transport& t = impl_->transport;
  HttpRequest put;
  put.method = "PUT";
  put.url = t.repo_url(ref) + "/manifests/" + ref.api_reference();
  put.headers.push_back("Content-Type: " + std::string(media_type));
  put.body = bytes;
  auto p = t.send_with_retries(impl_->http, ref, "pull,push", put);
  if (!p) return fail(t.wrap(ref, p.error(), "push manifest " + ref.familiar()));
  if (p->status != 201) return fail(Transport::http_error("push manifest " + ref.familiar(), *p));
  return sha256_of(bytes);
}

}  // namespace lockstep::registry
