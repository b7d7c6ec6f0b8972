#include "registry-mirror/mirror_blobs.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <thread>

namespace lockstep::registry {
namespace {

constexpr int kMaxAttempts = 4;

Status pwrite_all(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write download temp file");
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return {};
}

std::optional<uint64_t> header_u64(const HttpResponse& r, std::string_view name) {
  auto v = r.header(name);
  if (!v || v->empty()) return std::nullopt;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v->c_str(), &end, 10);
  if (!end || *end != '\0') return std::nullopt;
  return n;
}

}  // namespace

DownloadState BlobDownload::state() const {
  std::lock_guard lock(mu_);
  return st_;
}

void BlobDownload::on_change(uint64_t seen_readable, bool seen_headers, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    bool changed =
        st_.readable > seen_readable || st_.headers != seen_headers || st_.done || st_.failed;
    if (!changed) {
      waiters_.push_back({seen_readable, seen_headers, std::move(fn)});
      return;
    }
  }
  fn();
}

void BlobDownload::update(const std::function<void(DownloadState&)>& f) {
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(mu_);
    f(st_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (st_.readable > it->seen || st_.headers != it->seen_headers || st_.done || st_.failed) {
        wake.push_back(std::move(it->fn));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& fn : wake) fn();
}

BlobFetcher::BlobFetcher(MirrorStore& store, MirrorMetrics& metrics)
    : store_(store), metrics_(metrics) {}

BlobFetcher::~BlobFetcher() {
  abort_all();
}

size_t BlobFetcher::in_flight() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

void BlobFetcher::abort_all() {
  abort_ = true;
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return running_ == 0; });
}

std::shared_ptr<BlobDownload> BlobFetcher::join(Upstream& upstream, const std::string& repo,
                                                const Digest& d) {
  std::lock_guard lock(mu_);
  if (auto it = active_.find(d); it != active_.end()) return it->second;
  // Checked under the lock: a download publishes before it leaves active_,
  // so a blob missing from both is really missing.
  if (store_.blobs().has(d)) return nullptr;
  auto fd = store_.temp_file();
  auto dl = std::make_shared<BlobDownload>(d, fd ? std::move(*fd) : UniqueFd());
  if (!fd || abort_) {
    dl->update([&](DownloadState& s) {
      s.failed = true;
      s.error = fd ? "mirror is shutting down" : fd.error().message();
    });
    return dl;
  }
  active_[d] = dl;
  ++running_;
  metrics_.downloads_in_flight.fetch_add(1);
  std::thread([this, dl, up = &upstream, repo] { run(dl, up, repo); }).detach();
  return dl;
}

void BlobFetcher::run(std::shared_ptr<BlobDownload> dl, Upstream* upstream, std::string repo) {
  auto st = download(*dl, *upstream, repo);
  if (!st) {
    spdlog::warn("mirror: {}", st.error().message());
    dl->update([&](DownloadState& s) {
      s.failed = true;
      s.error = st.error().message();
    });
  }
  std::lock_guard lock(mu_);
  active_.erase(dl->digest());
  metrics_.downloads_in_flight.fetch_sub(1);
  if (--running_ == 0) idle_.notify_all();
}

Status BlobFetcher::download(BlobDownload& dl, Upstream& upstream, const std::string& repo) {
  const Digest& d = dl.digest();
  const std::string what = "blob " + d.str() + " from " + upstream.name() + "/" + repo;
  if (auto refused = upstream.admit(false)) {
    dl.update([&](DownloadState& s) {
      s.status = 429;
      s.retry_after = refused->retry_after;
    });
    return fail(refused->reason, ErrorKind::kUnavailable);
  }
  Sha256 hash;
  uint64_t written = 0;
  std::optional<uint64_t> size;
  int attempt = 0;
  for (;;) {
    ++attempt;
    uint64_t start = written;
    uint64_t skip = 0;  // bytes to drop when a Range request was answered with 200
    auto on_start = [&](long status, const HttpResponse& r) -> Status {
      if (status == 206) {
        auto cr = r.header("content-range").value_or("");
        std::string want = "bytes " + std::to_string(start) + "-";
        if (cr.rfind(want, 0) != 0)
          return fail(what + ": unexpected Content-Range '" + cr + "'", ErrorKind::kIntegrity);
        if (auto slash = cr.rfind('/'); slash != std::string::npos && !size) {
          char* end = nullptr;
          unsigned long long total = std::strtoull(cr.c_str() + slash + 1, &end, 10);
          if (end && *end == '\0') size = total;
        }
      } else {
        skip = start;
        if (!size) size = header_u64(r, "content-length");
      }
      dl.update([&](DownloadState& s) {
        s.headers = true;
        s.size = size;
      });
      return {};
    };
    auto on_data = [&](const char* p, size_t n) -> Status {
      if (abort_) return fail(what + ": mirror is shutting down", ErrorKind::kGeneric);
      if (skip > 0) {
        size_t drop = std::min<uint64_t>(skip, n);
        skip -= drop;
        p += drop;
        n -= drop;
        if (n == 0) return {};
      }
      if (size && written + n > *size)
        return fail(what + ": upstream sent more than its Content-Length " + std::to_string(*size),
                    ErrorKind::kIntegrity);
      LS_TRY(pwrite_all(dl.fd(), p, n, written));
      hash.update(p, n);
      written += n;
      metrics_.bytes_fetched(n);
      // Hold the last byte back until the digest is verified.
      uint64_t readable = size ? std::min(written, *size - 1) : 0;
      if (size && *size == 0) readable = 0;
      dl.update([&](DownloadState& s) { s.readable = std::max(s.readable, readable); });
      return {};
    };
    auto resp = upstream.stream(repo, "blobs/" + d.str(), start, on_start, on_data);
    if (abort_) return fail(what + ": mirror is shutting down");
    if (resp && (resp->status == 200 || resp->status == 206)) {
      if (size && written != *size)
        return fail(what + ": upstream ended after " + std::to_string(written) + " of " +
                        std::to_string(*size) + " bytes",
                    ErrorKind::kUnavailable);
      break;
    }
    if (resp) {
      long status = resp->status;
      bool retry = status >= 500 && attempt < kMaxAttempts;
      if (!retry) {
        dl.update([&](DownloadState& s) {
          s.status = status;
          s.retry_after = parse_retry_after(*resp);
        });
        return fail(what + ": upstream answered HTTP " + std::to_string(status),
                    ErrorKind::kUnavailable);
      }
    } else {
      if (resp.error().kind() != ErrorKind::kUnavailable) return fail(resp.error());
      if (written > start) attempt = 1;  // progress: the break is not the upstream failing us
      if (attempt >= kMaxAttempts) return fail(Error(resp.error()).context(what));
    }
    std::this_thread::sleep_for(upstream.backoff(attempt));
  }
  Digest got = hash.finish();
  if (got != d)
    return fail(
        Error(what + ": digest mismatch: upstream sent " + got.str(), 0, ErrorKind::kIntegrity));
  LS_TRY(store_.publish(dl.fd(), d, written));
  dl.update([&](DownloadState& s) {
    s.headers = true;
    s.size = written;
    s.readable = written;
    s.done = true;
  });
  return {};
}

}  // namespace lockstep::registry
