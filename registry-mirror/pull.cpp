// Blob downloads (streamed, verified, resumed) and the pull sequence.
#include <atomic>
#include <regex>
#include <thread>

#include "registry-mirror/client.hpp"
#include "registry-mirror/client_impl.hpp"

namespace lockstep::registry {
namespace {

using K = ProgressEvent::Kind;

void emit(const ProgressSink& sink, K kind, const Digest& d, uint64_t bytes, uint64_t total,
          std::string note = {}) {
  if (sink) sink(ProgressEvent{kind, d, bytes, total, std::move(note)});
}

// The digest the bytes actually had, as named in the store's commit error.
std::string actual_digest_in(const std::string& message, const Digest& expected) {
  static const std::regex kDigest("sha256:[0-9a-f]{64}");
  for (auto it = std::sregex_iterator(message.begin(), message.end(), kDigest);
       it != std::sregex_iterator(); ++it)
    if (it->str() != expected.str()) return it->str();
  return {};
}

}  // namespace

Status RegistryClient::Impl::fetch_blob(HttpSession& s, const Reference& repo,
                                        const Descriptor& blob, cache::BlobStore& store,
                                        const ProgressSink& progress,
                                        const std::atomic<bool>* cancel) {
  const Digest& want = blob.digest;
  if (store.has(want)) {
    emit(progress, K::kExists, want, blob.size, blob.size);
    return {};
  }
  const std::string what = "blob " + want.str() + " from " + repo.name();
  LS_TRY_ASSIGN(cache::BlobWriter writer, store.writer(want));
  emit(progress, K::kStart, want, 0, blob.size);

  uint64_t have = 0;  // bytes in `writer`, all of them hashed already
  uint64_t best = 0;  // most bytes ever held: only new ground renews the attempt budget
  int attempt = 0;
  while (true) {
    ++attempt;
    HttpRequest req;
    req.url = transport.repo_url(repo) + "/blobs/" + want.str();
    if (have > 0) req.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
    req.on_start = [&](long status, const HttpResponse& r) -> Status {
      if (have == 0) return {};
      if (status == 206) {
        // "bytes N-M/T": must continue exactly where we stopped.
        std::string cr = r.header("content-range").value_or("");
        if (cr.rfind("bytes " + std::to_string(have) + "-", 0) == 0) return {};
        return fail(what + ": registry answered the resume at " + std::to_string(have) +
                        " with Content-Range '" + cr + "'",
                    ErrorKind::kIntegrity);
      }
      // The server ignored Range and sends everything again: start over.
      auto fresh = store.writer(want);
      if (!fresh) return fail(fresh.error());
      writer = std::move(*fresh);
      have = 0;
      return {};
    };
    req.on_data = [&](const char* data, size_t len) -> Status {
      if (cancel && cancel->load(std::memory_order_relaxed))
        return fail(what + ": cancelled", ErrorKind::kGeneric);
      if (have + len > blob.size)
        return fail(
            what + ": more bytes than the " + std::to_string(blob.size) + " the manifest declares",
            ErrorKind::kIntegrity);
      LS_TRY(writer.write(data, len));
      have += len;
      emit(progress, K::kBytes, want, have, blob.size);
      return {};
    };
    auto resp = transport.send(s, repo, "pull", std::move(req));
    std::string retry_reason;
    const HttpResponse* status_resp = nullptr;
    if (!resp) {
      const Error& e = resp.error();
      if (e.kind() != ErrorKind::kUnavailable) {
        // Errors from the callbacks above already name the blob.
        if (e.message().rfind(what, 0) == 0 || e.kind() == ErrorKind::kUnreachable) return fail(e);
        return fail(Error(e).context(what));
      }
      retry_reason = resp.error().message();
    } else if (resp->status == 200 || resp->status == 206) {
      if (have == blob.size) break;
      retry_reason = "connection closed after " + std::to_string(have) + " of " +
                     std::to_string(blob.size) + " bytes";
    } else if (resp->status == 416) {
      // Our offset is not satisfiable: start again from the beginning.
      LS_TRY_ASSIGN(writer, store.writer(want));
      have = 0;
      retry_reason = "range not satisfiable";
    } else if (Transport::retryable_status(resp->status)) {
      retry_reason = "HTTP " + std::to_string(resp->status);
      status_resp = &*resp;
    } else {
      return fail(Transport::http_error(what, *resp));
    }
    if (have > best) {  // new ground was covered: a fresh budget
      best = have;
      attempt = 1;
    }
    if (attempt >= transport.max_attempts()) {
      if (!resp && have == 0) return fail(transport.unreachable(repo, resp.error()));
      return fail(
          what + ": " + retry_reason + " (gave up after " + std::to_string(attempt) + " attempts)",
          ErrorKind::kUnavailable);
    }
    emit(progress, K::kRetry, want, have, blob.size, retry_reason);
    std::this_thread::sleep_for(transport.delay(attempt, status_resp));
  }
  auto committed = writer.commit();
  if (!committed) {
    if (committed.error().kind() == ErrorKind::kIntegrity) {
      std::string got = actual_digest_in(committed.error().message(), want);
      return fail(what + ": digest mismatch" + (got.empty() ? "" : " (got " + got + ")"),
                  ErrorKind::kIntegrity);
    }
    return fail(Error(committed.error()).context(what));
  }
  emit(progress, K::kDone, want, have, blob.size);
  return {};
}

Result<cache::ImageRecord> RegistryClient::pull(const Reference& ref,
                                                const cache::Platform& platform,
                                                cache::ImageStore& images,
                                                const ProgressSink& progress) {
  Impl& im = *impl_;
  cache::BlobStore& blobs = images.blobs();
  LS_TRY_ASSIGN(FetchedManifest top, im.get_manifest(im.http, ref));

  std::optional<Digest> index_digest;
  FetchedManifest image = std::move(top);
  if (is_index_media_type(image.media_type)) {
    std::string where = "index " + ref.familiar();
    LS_TRY_ASSIGN(Json doc, parse_json(image.bytes, where));
    LS_TRY_ASSIGN(ImageIndex idx, parse_index(doc, where));
    LS_TRY_ASSIGN(Descriptor chosen, select_platform(idx, platform, ref.familiar()));
    LS_TRY_ASSIGN(Digest stored, blobs.put(image.bytes));
    index_digest = stored;
    LS_TRY_ASSIGN(image, im.get_manifest(im.http, ref.with_digest(chosen.digest)));
    if (!is_image_manifest_media_type(image.media_type))
      return fail(where + ": entry " + chosen.digest.str() + " for " + platform_string(platform) +
                      " is a " + image.media_type + ", not an image manifest",
                  ErrorKind::kUnsupported);
  }
  emit(progress, K::kResolved, image.digest, 0, 0, ref.familiar());

  std::string where = "manifest " + image.digest.str() + " of " + ref.familiar();
  LS_TRY_ASSIGN(Json mdoc, parse_json(image.bytes, where));
  LS_TRY_ASSIGN(ImageManifest manifest, parse_image_manifest(mdoc, where));

  // The config first: it names the platform, which must match when no index chose it.
  LS_TRY(im.fetch_blob(im.http, ref, manifest.config, blobs, {}, nullptr));
  LS_TRY_ASSIGN(std::string config_bytes, blobs.read(manifest.config.digest));
  LS_TRY_ASSIGN(Json config, parse_json(config_bytes, "config " + manifest.config.digest.str()));
  if (!index_digest && config.is_object() && config.contains("architecture")) {
    cache::Platform have;
    have.os = config.value("os", "linux");
    have.architecture = config.value("architecture", "");
    have.variant = config.value("variant", "");
    if (!platform_matches(platform, have))
      return fail("image " + ref.familiar() + " is for " + platform_string(have) + " only, not " +
                      platform_string(platform) + " (use --platform " + platform_string(have) + ")",
                  ErrorKind::kNotFound);
  }

  // Layers: each distinct missing blob once, up to `parallel` at a time.
  std::vector<const Descriptor*> todo;
  for (const auto& l : manifest.layers) {
    bool dup = std::any_of(todo.begin(), todo.end(),
                           [&](const Descriptor* d) { return d->digest == l.digest; });
    if (dup) continue;
    if (blobs.has(l.digest)) {
      emit(progress, K::kExists, l.digest, l.size, l.size);
      continue;
    }
    todo.push_back(&l);
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::mutex err_mu;
  std::optional<Error> first_error;
  auto worker = [&](HttpSession& session) {
    while (!cancel.load()) {
      size_t i = next.fetch_add(1);
      if (i >= todo.size()) return;
      auto st = im.fetch_blob(session, ref, *todo[i], blobs, progress, &cancel);
      if (!st) {
        std::lock_guard lock(err_mu);
        if (!first_error) first_error = st.error();
        cancel.store(true);
      }
    }
  };
  size_t nthreads = std::min<size_t>(std::max(1u, im.options.parallel), todo.size());
  if (nthreads <= 1) {
    worker(im.http);
  } else {
    std::vector<HttpSession> sessions(nthreads - 1);
    std::vector<std::thread> threads;
    for (auto& s : sessions) threads.emplace_back(worker, std::ref(s));
    worker(im.http);
    for (auto& t : threads) t.join();
  }
  if (first_error) return fail(*first_error);

  LS_TRY_ASSIGN(Digest stored, blobs.put(image.bytes));
  if (stored != image.digest)
    return fail(where + ": stored as " + stored.str(), ErrorKind::kIntegrity);
  std::optional<std::string> tag;
  if (!ref.digest) tag = ref.name() + ":" + ref.tag_or_latest();
  return images.add_manifest(image.digest, index_digest, tag);
}

}  // namespace lockstep::registry
