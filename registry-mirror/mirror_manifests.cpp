#include "registry-mirror/mirror_manifests.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "registry-mirror/manifest.hpp"

namespace lockstep::registry {
namespace fs = std::filesystem;

namespace {

int64_t now_unix() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string strip_params(std::string v) {
  if (auto semi = v.find(';'); semi != std::string::npos) v.resize(semi);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

// RFC 6838's restricted-name characters around one '/': the media type is
// stored, written into the tag record (JSON) and sent back as Content-Type.
bool valid_media_type(std::string_view mt) {
  size_t slash = mt.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == mt.size() || mt.size() > 255)
    return false;
  for (size_t i = 0; i < mt.size(); ++i) {
    char c = mt[i];
    bool name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
    if (!name && i != slash) return false;
  }
  return true;
}

}  // namespace

void map_upstream_failure(long status, const std::string& unknown_code, const std::string& what,
                          ManifestAnswer& a) {
  if (status == 404) {
    a.status = 404;
    a.code = unknown_code;
    a.message = what + ": not found upstream";
  } else if (status == 429) {
    a.status = 429;
    a.code = "TOOMANYREQUESTS";
    a.message = what + ": upstream rate limit (HTTP 429)";
  } else if (status == 401) {
    a.status = 401;
    a.code = "UNAUTHORIZED";
    a.message = what + ": upstream requires authentication";
  } else if (status == 403) {
    a.status = 403;
    a.code = "DENIED";
    a.message = what + ": upstream denied access";
  } else {
    a.status = 503;
    a.code = "UNAVAILABLE";
    a.message = status == 0 ? what + ": upstream unreachable"
                            : what + ": upstream answered HTTP " + std::to_string(status);
  }
}

ManifestCache::ManifestCache(MirrorStore& store, fs::path dir, std::chrono::seconds ttl,
                             MirrorMetrics& metrics)
    : store_(store), dir_(std::move(dir)), ttl_(ttl), metrics_(metrics) {}

fs::path ManifestCache::tag_path(const std::string& key) const {
  return dir_ / "tags" / (key + ".json");
}

std::optional<ManifestAnswer> ManifestCache::load(const Digest& d) {
  auto bytes = store_.blobs().read(d);
  if (!bytes) return std::nullopt;
  auto mt = read_file(dir_ / "manifests" / d.hex());
  if (!mt) return std::nullopt;
  store_.touch(d);
  ManifestAnswer a;
  a.body = std::move(*bytes);
  a.media_type = *mt;
  a.digest = d;
  return a;
}

std::optional<ManifestCache::TagRecord> ManifestCache::tag_record(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto it = tags_.find(key); it != tags_.end()) return it->second;
  auto text = read_file(tag_path(key));
  if (!text) return std::nullopt;
  auto j = parse_json(*text, "tag record");
  if (!j || !j->is_object()) return std::nullopt;
  auto d = Digest::parse(json_string(*j, "digest"));
  if (!d) return std::nullopt;
  TagRecord r{*d, json_string(*j, "media_type"), json_int(*j, "checked")};
  tags_[key] = r;
  return r;
}

void ManifestCache::save_tag(const std::string& key, const TagRecord& r) {
  {
    std::lock_guard lock(mu_);
    tags_[key] = r;
  }
  fs::path p = tag_path(key);
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  Json j = {{"digest", r.digest.str()}, {"media_type", r.media_type}, {"checked", r.checked}};
  if (auto st = write_file_atomic(p, j.dump() + "\n"); !st)
    spdlog::warn("mirror: cannot save tag record {}: {}", p.string(), st.error().message());
}

ManifestAnswer ManifestCache::single_flight(const std::string& key,
                                            const std::function<ManifestAnswer()>& f) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(mu_);
    auto& slot = flights_[key];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (leader) {
    ManifestAnswer a = f();
    {
      std::lock_guard lock(flight->mu);
      flight->answer = a;
      flight->done = true;
    }
    flight->cv.notify_all();
    std::lock_guard lock(mu_);
    flights_.erase(key);
    return a;
  }
  std::unique_lock lock(flight->mu);
  flight->cv.wait(lock, [&] { return flight->done; });
  return flight->answer;
}

ManifestAnswer ManifestCache::get(Upstream& up, const std::string& repo,
                                  const std::string& reference,
                                  const std::optional<Digest>& digest) {
  if (digest) return by_digest(up, repo, *digest);
  return by_tag(up, repo, reference);
}

ManifestAnswer ManifestCache::by_digest(Upstream& up, const std::string& repo, const Digest& d) {
  if (auto a = load(d)) {
    a->hit = true;
    metrics_.hit("manifest");
    return *a;
  }
  metrics_.miss("manifest");
  return single_flight(up.name() + "@" + d.str(), [&] {
    if (auto a = load(d)) return *a;
    return fetch(up, repo, d.str(), d);
  });
}

ManifestAnswer ManifestCache::by_tag(Upstream& up, const std::string& repo,
                                     const std::string& tag) {
  const std::string key = up.name() + "/" + repo + "/" + tag;
  const std::string what = "manifest " + up.name() + "/" + repo + ":" + tag;
  auto fresh = [&](const TagRecord& r) { return now_unix() - r.checked < ttl_.count(); };
  if (auto rec = tag_record(key); rec && fresh(*rec)) {
    if (auto a = load(rec->digest)) {
      a->hit = true;
      metrics_.hit("manifest");
      return *a;
    }
  }
  metrics_.miss("manifest");
  return single_flight("tag " + key, [&]() -> ManifestAnswer {
    auto rec = tag_record(key);
    std::optional<ManifestAnswer> cached;
    if (rec) cached = load(rec->digest);
    if (cached && fresh(*rec)) return *cached;
    auto stale = [&](const std::string& reason) {
      ManifestAnswer a = *cached;
      a.stale = reason;
      metrics_.stale();
      spdlog::warn("mirror: serving stale {} ({}): {}", what, a.digest.str(), reason);
      return a;
    };
    if (cached) {
      if (auto refused = up.admit(false)) return stale(refused->reason);
      // A HEAD costs no pull on Docker Hub: confirm the digest, GET only if it moved.
      auto head = up.request("manifest_head", "HEAD", repo, "manifests/" + tag,
                             {"Accept: " + manifest_accept_header()});
      if (!head) return stale("upstream unreachable: " + head.error().message());
      if (head->status == 429 || head->status >= 500)
        return stale("upstream answered HTTP " + std::to_string(head->status));
      if (head->status == 200 &&
          head->header("docker-content-digest").value_or("") == rec->digest.str()) {
        save_tag(key, TagRecord{rec->digest, rec->media_type, now_unix()});
        return *cached;
      }
      if (up.budget_low()) return stale("manifest budget spent");
    }
    ManifestAnswer a = fetch(up, repo, tag, std::nullopt);
    if (a.status == 200) {
      save_tag(key, TagRecord{a.digest, a.media_type, now_unix()});
      return a;
    }
    if (cached && a.status != 404) return stale(a.message);
    return a;
  });
}

ManifestAnswer ManifestCache::fetch(Upstream& up, const std::string& repo,
                                    const std::string& reference,
                                    const std::optional<Digest>& want) {
  ManifestAnswer a;
  const std::string what = "manifest " + up.name() + "/" + repo + (want ? "@" : ":") + reference;
  if (auto refused = up.admit(true)) {
    a.status = 429;
    a.code = "TOOMANYREQUESTS";
    a.message = what + ": " + refused->reason;
    a.retry_after = refused->retry_after;
    return a;
  }
  auto resp = up.request("manifest", "GET", repo, "manifests/" + reference,
                         {"Accept: " + manifest_accept_header()});
  if (!resp) {
    map_upstream_failure(0, "MANIFEST_UNKNOWN", what, a);
    a.message += ": " + resp.error().message();
    return a;
  }
  if (resp->status != 200) {
    map_upstream_failure(resp->status, "MANIFEST_UNKNOWN", what, a);
    a.retry_after = parse_retry_after(*resp);
    return a;
  }
  Digest d = sha256_of(resp->body);
  auto dcd = resp->header("docker-content-digest").value_or("");
  if ((want && d != *want) || (dcd.rfind("sha256:", 0) == 0 && dcd != d.str())) {
    a.status = 502;
    a.code = "MANIFEST_INVALID";
    a.message = what + ": upstream sent bytes with digest " + d.str();
    return a;
  }
  std::string mt = strip_params(resp->header("content-type").value_or(""));
  if (mt.empty() || mt == "application/json" || mt == "text/plain") {
    auto j = parse_json(resp->body, "manifest");
    if (j && j->is_object()) mt = json_string(*j, "mediaType", std::string(media::kOciManifest));
  }
  if (!valid_media_type(mt)) {
    a.status = 502;
    a.code = "MANIFEST_INVALID";
    a.message = what + ": upstream sent an invalid media type";
    return a;
  }
  auto stored = store_.blobs().put(resp->body);
  if (stored) {
    std::error_code ec;
    fs::create_directories(dir_ / "manifests", ec);
    auto st = write_file_atomic(dir_ / "manifests" / d.hex(), mt);
    if (st)
      store_.added(d, resp->body.size());
    else
      spdlog::warn("mirror: cannot record media type of {}: {}", d.str(), st.error().message());
  } else {
    spdlog::warn("mirror: cannot store {}: {}", what, stored.error().message());
  }
  a.body = std::move(resp->body);
  a.media_type = mt;
  a.digest = d;
  return a;
}

}  // namespace lockstep::registry
