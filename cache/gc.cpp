#include "cache/gc.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "cache/gc_lock.hpp"
#include "cache/image_store_db.hpp"
#include "cache/layer_unpack.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

uint64_t tree_bytes(const fs::path& root) {
  uint64_t n = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0) return 0;
  n += static_cast<uint64_t>(st.st_blocks) * 512;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert({st.st_dev, st.st_ino}).second)
      continue;
    n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

// What one image keeps alive.
struct Reach {
  std::set<Digest> blobs;
  std::set<std::string> layers;  // names under <state>/layers (layer_dir_names)
};

Reach reach_of(const ImageStore& store, const Digest& manifest, std::optional<Digest> index) {
  Reach r;
  r.blobs.insert(manifest);
  if (index) r.blobs.insert(*index);
  auto rec = store.load_record(manifest, index, Platform{});
  if (!rec) return r;  // a broken record keeps only what it names directly
  r.blobs.insert(rec->config);
  for (const auto& l : rec->layers) {
    r.blobs.insert(l.blob);
    for (auto& n : layer_dir_names(l.diff_id, l.chain_id)) r.layers.insert(std::move(n));
  }
  return r;
}

struct Sizes {
  std::map<Digest, uint64_t> blob;
  std::map<std::string, uint64_t> layer;  // by directory name
};

// "<64 hex>" (a diff id) or "chain-<64 hex>" (a chain id).
bool is_layer_dir_name(const std::string& name) {
  std::string hex = name.starts_with("chain-") ? name.substr(6) : name;
  return Digest::parse("sha256:" + hex).has_value();
}

Sizes measure(const ImageStore& store) {
  Sizes s;
  if (auto all = store.blobs().list())
    for (const auto& d : *all) s.blob[d] = store.blobs().size(d).value_or(0);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store.state_dir() / "layers", ec)) {
    std::string name = e.path().filename().string();
    if (is_layer_dir_name(name)) s.layer[name] = tree_bytes(e.path());
  }
  return s;
}

uint64_t size_of(const Sizes& s, const std::set<Digest>& blobs,
                 const std::set<std::string>& layers) {
  uint64_t n = 0;
  for (const auto& d : blobs)
    if (auto it = s.blob.find(d); it != s.blob.end()) n += it->second;
  for (const auto& d : layers)
    if (auto it = s.layer.find(d); it != s.layer.end()) n += it->second;
  return n;
}

}  // namespace

Result<CacheUsage> cache_usage(const ImageStore& store) {
  CacheUsage u;
  Sizes s = measure(store);
  u.blobs = s.blob.size();
  for (const auto& [d, n] : s.blob) u.blob_bytes += n;
  u.layers = s.layer.size();
  for (const auto& [d, n] : s.layer) u.layer_bytes += n;
  std::error_code ec;
  if (fs::exists(store.state_dir() / "tmp", ec))
    u.tmp_bytes = tree_bytes(store.state_dir() / "tmp");
  return u;
}

Result<std::vector<CachedImage>> cache_images(const ImageStore& store) {
  const fs::path& state = store.state_dir();
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state));
  LS_TRY_ASSIGN(std::vector<Digest> busy, images_in_use(state));
  Sizes s = measure(store);
  std::vector<CachedImage> out;
  for (const auto& [m, idx] : db.images) {
    CachedImage ci;
    ci.manifest = m;
    for (const auto& [t, d] : db.tags)
      if (d == m) ci.tags.push_back(t);
    Reach r = reach_of(store, m, idx);
    ci.bytes = size_of(s, r.blobs, r.layers);
    ci.last_use = last_use(state, m);
    ci.in_use = std::binary_search(busy.begin(), busy.end(), m);
    out.push_back(std::move(ci));
  }
  std::stable_sort(out.begin(), out.end(), [](const CachedImage& a, const CachedImage& b) {
    return a.last_use < b.last_use;  // nullopt (never used) sorts first
  });
  return out;
}

Result<GcReport> collect_garbage(ImageStore& store, const GcOptions& opts) {
  const fs::path& state = store.state_dir();
  LS_TRY_ASSIGN(StoreLock store_lock, StoreLock::exclusive(state));
  LS_TRY_ASSIGN(UniqueFd db_lock, lock_image_db(state));
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state));
  GcReport rep;

  // Every image with a lock file or a record: those whose lock we can take
  // exclusively stay locked (so no job starts them) until gc is done.
  std::set<Digest> candidates;
  for (const auto& [m, idx] : db.images) candidates.insert(m);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state / "locks", ec)) {
    std::string n = e.path().filename().string();
    if (n.starts_with("image-") && n.ends_with(".lock"))
      if (auto d = Digest::parse("sha256:" + n.substr(6, n.size() - 11))) candidates.insert(*d);
  }
  std::vector<UniqueFd> held;
  std::set<Digest> busy;
  for (const auto& m : candidates) {
    LS_TRY_ASSIGN(UniqueFd fd, try_lock_unused(state, m));
    if (fd)
      held.push_back(std::move(fd));
    else
      busy.insert(m);
  }
  rep.in_use.assign(busy.begin(), busy.end());

  Sizes sizes = measure(store);
  std::map<Digest, Reach> reach;
  for (const auto& [m, idx] : db.images) reach[m] = reach_of(store, m, idx);
  for (const auto& m : busy)
    if (!reach.count(m)) reach[m] = reach_of(store, m, std::nullopt);
  auto live_set = [&](Reach& all) {
    all = Reach{};
    for (const auto& [m, r] : reach) {
      all.blobs.insert(r.blobs.begin(), r.blobs.end());
      all.layers.insert(r.layers.begin(), r.layers.end());
    }
  };
  Reach live;
  live_set(live);

  if (opts.max_size) {
    std::vector<std::pair<std::optional<std::chrono::system_clock::time_point>, Digest>> order;
    for (const auto& [m, idx] : db.images)
      if (!busy.count(m)) order.emplace_back(last_use(state, m), m);
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [when, m] : order) {
      if (size_of(sizes, live.blobs, live.layers) <= *opts.max_size) break;
      std::string name = m.str();
      for (auto it = db.tags.begin(); it != db.tags.end();) {
        if (it->second == m) {
          name = it->first;
          it = db.tags.erase(it);
        } else {
          ++it;
        }
      }
      db.images.erase(m);
      reach.erase(m);
      rep.evicted.push_back(name);
      live_set(live);
    }
    LS_TRY(save_image_db(state, db));
  }

  for (const auto& [d, n] : sizes.blob) {
    if (live.blobs.count(d)) continue;
    LS_TRY(store.blobs().remove(d));
    ++rep.blobs_removed;
    rep.bytes_freed += n;
  }
  for (const auto& [name, n] : sizes.layer) {
    if (live.layers.count(name)) continue;
    LS_TRY(remove_tree(state / "layers" / name));
    ++rep.layers_removed;
    rep.bytes_freed += n;
  }
  // Unpack locks are named by diff id, also for chain-keyed directories.
  for (const auto& e : fs::directory_iterator(state / "layers", ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".lock-") && !live.layers.count(name.substr(6)))
      ::unlink(e.path().c_str());
  }
  for (const auto& m : candidates) {
    if (db.images.count(m) || busy.count(m)) continue;
    LS_TRY(forget_use(state, m));
    ::unlink((state / "locks" / ("image-" + m.hex() + ".lock")).c_str());
  }
  auto cutoff = fs::file_time_type::clock::now() - opts.tmp_grace;
  for (const auto& e : fs::directory_iterator(state / "tmp", ec)) {
    std::error_code ec2;
    auto t = fs::last_write_time(e.path(), ec2);
    if (!ec2 && t < cutoff) {
      rep.bytes_freed += tree_bytes(e.path());
      LS_TRY(remove_tree(e.path()));
    }
  }
  rep.size_after = size_of(sizes, live.blobs, live.layers);
  return rep;
}

Result<uint64_t> parse_size(std::string_view s) {
  auto bad = [&] {
    return fail(Error("invalid size '" + std::string(s) + "' (examples: 500M, 10G, 1073741824)", 0,
                      ErrorKind::kUsage));
  };
  size_t i = 0;
  uint64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (n > (UINT64_MAX - 9) / 10) return bad();
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  if (i == 0) return bad();
  std::string unit;
  for (; i < s.size(); ++i)
    unit += static_cast<char>(std::toupper(static_cast<unsigned char>(s[i])));
  static const std::map<std::string, int> shifts = {
      {"", 0},     {"B", 0},  {"K", 10},  {"KB", 10},  {"KIB", 10}, {"M", 20},  {"MB", 20},
      {"MIB", 20}, {"G", 30}, {"GB", 30}, {"GIB", 30}, {"T", 40},   {"TB", 40}, {"TIB", 40}};
  auto it = shifts.find(unit);
  if (it == shifts.end()) return bad();
  if (it->second && n > (UINT64_MAX >> it->second)) return bad();
  return n << it->second;
}

std::string format_size(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace lockstep::cache
