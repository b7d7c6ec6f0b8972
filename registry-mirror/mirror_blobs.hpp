#pragma once
// Single-flight blob downloads. The first request for a missing blob starts
// one upstream GET into an unnamed temp file; every request for that digest
// while it runs joins the same BlobDownload and reads the growing file (by
// pread/sendfile at its own offset) as bytes arrive. The last byte is held
// back until the digest is verified and the blob is published, so a client
// never receives a complete body that turns out to be wrong. Clients come and
// go without affecting the download; an upstream break resumes with Range.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "registry-mirror/mirror_metrics.hpp"
#include "registry-mirror/mirror_store.hpp"
#include "registry-mirror/mirror_upstream.hpp"

namespace lockstep::registry {

struct DownloadState {
  bool headers = false;          // the upstream answered 2xx; size is known if it sent one
  std::optional<uint64_t> size;  // Content-Length of the blob
  uint64_t readable = 0;         // bytes a reader may send now
  bool done = false;             // verified and published: readable == *size
  bool failed = false;
  long status = 0;  // upstream status on failure (0: transport / integrity)
  std::optional<std::chrono::seconds> retry_after;
  std::string error;  // one line, on failure
};

class BlobDownload {
 public:
  explicit BlobDownload(Digest d, UniqueFd fd) : digest_(std::move(d)), fd_(std::move(fd)) {}
  const Digest& digest() const { return digest_; }
  // The temp file (and after publication, the blob's inode). Valid while
  // the BlobDownload lives; readers use explicit offsets.
  int fd() const { return fd_.get(); }
  DownloadState state() const;
  // Calls fn once, from any thread, as soon as the state differs from what
  // the caller saw (readable > seen_readable, or headers/done/failed moved).
  void on_change(uint64_t seen_readable, bool seen_headers, std::function<void()> fn);

 private:
  friend class BlobFetcher;
  void update(const std::function<void(DownloadState&)>& f);

  Digest digest_;
  UniqueFd fd_;
  mutable std::mutex mu_;
  DownloadState st_;
  struct Waiter {
    uint64_t seen;
    bool seen_headers;
    std::function<void()> fn;
  };
  std::vector<Waiter> waiters_;
};

class BlobFetcher {
 public:
  BlobFetcher(MirrorStore& store, MirrorMetrics& metrics);
  ~BlobFetcher();  // aborts what still runs (nothing is published) and joins

  // The download of d: one in progress, or a new one from upstream/repo.
  // nullptr when the blob is already in the store (serve it from there).
  std::shared_ptr<BlobDownload> join(Upstream& upstream, const std::string& repo, const Digest& d);
  // Makes running downloads fail (nothing is published) and joins them.
  void abort_all();
  size_t in_flight() const;

 private:
  void run(std::shared_ptr<BlobDownload> dl, Upstream* upstream, std::string repo);
  // On failure, also sets the state's status/retry_after when the upstream answered.
  Status download(BlobDownload& dl, Upstream& upstream, const std::string& repo);

  MirrorStore& store_;
  MirrorMetrics& metrics_;
  mutable std::mutex mu_;
  std::map<Digest, std::shared_ptr<BlobDownload>> active_;
  std::condition_variable idle_;
  size_t running_ = 0;  // download threads (detached; counted so that shutdown waits)
  std::atomic<bool> abort_{false};
};

}  // namespace lockstep::registry
