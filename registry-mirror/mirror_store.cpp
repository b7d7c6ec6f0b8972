#include "registry-mirror/mirror_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "common/fs.hpp"

namespace lockstep::registry {
namespace fs = std::filesystem;

MirrorStore::MirrorStore(cache::BlobStore& store, uint64_t max_bytes, MirrorMetrics& metrics)
    : store_(store), max_bytes_(max_bytes), metrics_(metrics) {
  auto all = store_.list();
  if (!all) return;
  // Oldest modification first, so that startup order approximates LRU.
  std::vector<std::pair<int64_t, Digest>> by_time;
  for (const auto& d : *all) {
    struct stat st {};
    if (::stat(store_.path(d).c_str(), &st) != 0) continue;
    entries_[d].size = static_cast<uint64_t>(st.st_size);
    total_ += static_cast<uint64_t>(st.st_size);
    by_time.emplace_back(st.st_mtim.tv_sec, d);
  }
  std::sort(by_time.begin(), by_time.end());
  for (auto& [t, d] : by_time) entries_[d].last_use = ++clock_;
  metrics_.store_bytes = static_cast<int64_t>(total_);
}

Result<UniqueFd> MirrorStore::temp_file() {
  fs::path tmp = store_.root() / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  fs::create_directories(store_.root() / "blobs" / "sha256", ec);
  UniqueFd fd(::open(tmp.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create download temp file in " + tmp.string());
  return fd;
}

Status MirrorStore::publish(int fd, const Digest& d, uint64_t size) {
  if (::fchmod(fd, 0444) != 0 || ::fsync(fd) != 0) return fail_errno("sync blob " + d.str());
  fs::path dir = store_.root() / "blobs" / "sha256";
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, store_.path(d).c_str(), AT_SYMLINK_FOLLOW) != 0 &&
      errno != EEXIST)
    return fail_errno("store blob " + d.str() + " at " + store_.path(d).string());
  LS_TRY(fsync_dir(dir));
  added(d, size);
  return {};
}

void MirrorStore::added(const Digest& d, uint64_t size) {
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = entries_.try_emplace(d);
    if (fresh) {
      it->second.size = size;
      total_ += size;
    }
    it->second.last_use = ++clock_;
    metrics_.store_bytes = static_cast<int64_t>(total_);
  }
  enforce_limit();
}

void MirrorStore::touch(const Digest& d) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(d); it != entries_.end()) it->second.last_use = ++clock_;
}

void MirrorStore::pin(const Digest& d) {
  std::lock_guard lock(mu_);
  ++pins_[d];
}

void MirrorStore::unpin(const Digest& d) {
  std::lock_guard lock(mu_);
  if (auto it = pins_.find(d); it != pins_.end() && --it->second <= 0) pins_.erase(it);
}

void MirrorStore::enforce_limit() {
  if (max_bytes_ == 0) return;
  std::lock_guard lock(mu_);
  if (total_ <= max_bytes_) return;
  std::vector<std::pair<uint64_t, Digest>> order;
  for (const auto& [d, e] : entries_)
    if (!pins_.count(d)) order.emplace_back(e.last_use, d);
  std::sort(order.begin(), order.end());
  for (const auto& [t, d] : order) {
    if (total_ <= max_bytes_) break;
    // Readers holding the file open keep reading the unlinked inode.
    if (!store_.remove(d)) continue;
    total_ -= entries_[d].size;
    entries_.erase(d);
    metrics_.evictions.fetch_add(1);
    spdlog::info("mirror: evicted {} (store over {} bytes)", d.str(), max_bytes_);
  }
  metrics_.store_bytes = static_cast<int64_t>(total_);
}

}  // namespace lockstep::registry
