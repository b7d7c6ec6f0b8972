#include "registry-mirror/mirror_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "common/utf8.hpp"

namespace lockstep::registry {
namespace {

Result<uint64_t> parse_number(std::string_view s, std::string_view what) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data())
    return fail("invalid " + std::string(what) + " '" + std::string(s) + "'", ErrorKind::kUsage);
  return v;
}

std::string_view number_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return s.substr(0, i);
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view s) {
  std::string_view num = number_prefix(s);
  std::string_view unit = s.substr(num.size());
  auto bad = [&] {
    return fail("invalid duration '" + std::string(s) + "' (expected e.g. 30s, 5m, 6h, 1d)",
                ErrorKind::kUsage);
  };
  if (num.empty()) return bad();
  LS_TRY_ASSIGN(uint64_t n, parse_number(num, "duration"));
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "ms") return std::chrono::seconds((n + 999) / 1000);
  if (unit == "m") return std::chrono::seconds(n * 60);
  if (unit == "h") return std::chrono::seconds(n * 3600);
  if (unit == "d") return std::chrono::seconds(n * 86400);
  return bad();
}

Result<uint64_t> parse_size(std::string_view s) {
  std::string_view num = number_prefix(s);
  std::string unit(s.substr(num.size()));
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  auto bad = [&] {
    return fail("invalid size '" + std::string(s) + "' (expected e.g. 512M, 20G)",
                ErrorKind::kUsage);
  };
  if (num.empty() || unit.size() > 1) return bad();
  LS_TRY_ASSIGN(uint64_t n, parse_number(num, "size"));
  if (unit.empty()) return n;
  switch (unit[0]) {
    case 'k':
    case 'K':
      return n << 10;
    case 'm':
    case 'M':
      return n << 20;
    case 'g':
    case 'G':
      return n << 30;
    case 't':
    case 'T':
      return n << 40;
    default:
      return bad();
  }
}

Result<UpstreamConfig> parse_upstream_flag(std::string_view s) {
  auto eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == s.size())
    return fail("invalid --upstream '" + std::string(s) + "' (expected NAME=URL)",
                ErrorKind::kUsage);
  UpstreamConfig u;
  u.name = std::string(s.substr(0, eq));
  u.url = std::string(s.substr(eq + 1));
  return u;
}

Status parse_listen(std::string_view s, MirrorConfig& cfg) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos)
    return fail("invalid --listen '" + std::string(s) + "' (expected ADDR:PORT)",
                ErrorKind::kUsage);
  std::string host(s.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = parse_number(s.substr(colon + 1), "port");
  if (!port || *port > 65535)
    return fail("invalid --listen '" + std::string(s) + "': bad port", ErrorKind::kUsage);
  cfg.listen_host = host.empty() ? "0.0.0.0" : host;
  cfg.listen_port = static_cast<uint16_t>(*port);
  return {};
}

Status load_mirror_config(const std::filesystem::path& file, MirrorConfig& cfg) {
  const std::string where = file.filename().string();
  auto text = read_file(file);
  if (!text) return fail(std::move(text.error()).context("read mirror config " + file.string()));
  LS_TRY(check_yaml_text(*text, where, ErrorKind::kUsage));
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return fail(printable(where + ":" + std::to_string(e.mark.line + 1) + ":" +
                          std::to_string(e.mark.column + 1) + ": " + e.msg),
                ErrorKind::kUsage);
  }
  auto err = [&](const std::string& key, const std::string& msg) {
    return fail(printable(where + ": " + key + ": " + msg), ErrorKind::kUsage);
  };
  try {
    if (!root || root.IsNull()) return {};
    if (!root.IsMap()) return err("(top level)", "expected a mapping");
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "listen") {
        auto st = parse_listen(v.as<std::string>(), cfg);
        if (!st) return err(key, st.error().message());
      } else if (key == "default_upstream") {
        cfg.default_upstream = v.as<std::string>();
      } else if (key == "tag_ttl") {
        auto d = parse_duration(v.as<std::string>());
        if (!d) return err(key, d.error().message());
        cfg.tag_ttl = *d;
      } else if (key == "max_size") {
        auto n = parse_size(v.as<std::string>());
        if (!n) return err(key, n.error().message());
        cfg.max_size = *n;
      } else if (key == "state_dir") {
        cfg.state_dir = v.as<std::string>();
      } else if (key == "access_log") {
        cfg.access_log = v.as<std::string>();
      } else if (key == "threads") {
        cfg.threads = v.as<unsigned>();
      } else if (key == "upstream_threads") {
        cfg.upstream_threads = v.as<unsigned>();
      } else if (key == "shutdown_grace") {
        auto d = parse_duration(v.as<std::string>());
        if (!d) return err(key, d.error().message());
        cfg.shutdown_grace = *d;
      } else if (key == "upstreams") {
        if (!v.IsSequence()) return err(key, "expected a list");
        cfg.upstreams.clear();
        for (size_t i = 0; i < v.size(); ++i) {
          const std::string k = "upstreams[" + std::to_string(i) + "]";
          const YAML::Node& n = v[i];
          if (!n.IsMap()) return err(k, "expected a mapping");
          UpstreamConfig u;
          for (const auto& f : n) {
            const std::string fk = f.first.as<std::string>();
            if (fk == "name")
              u.name = f.second.as<std::string>();
            else if (fk == "url")
              u.url = f.second.as<std::string>();
            else if (fk == "insecure")
              u.insecure = f.second.as<bool>();
            else if (fk == "username")
              u.username = f.second.as<std::string>();
            else if (fk == "password")
              u.password = f.second.as<std::string>();
            else if (fk == "manifest_budget")
              u.manifest_budget = f.second.as<unsigned>();
            else if (fk == "budget_window") {
              auto d = parse_duration(f.second.as<std::string>());
              if (!d) return err(k + "." + fk, d.error().message());
              u.budget_window = *d;
            } else {
              return err(k, "unknown key '" + fk + "'");
            }
          }
          if (u.name.empty()) return err(k, "missing 'name'");
          if (u.url.empty()) return err(k, "missing 'url'");
          cfg.upstreams.push_back(std::move(u));
        }
      } else {
        return err(key, "unknown key");
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(printable(where + ":" + std::to_string(e.mark.line + 1) + ":" +
                          std::to_string(e.mark.column + 1) + ": " + e.msg),
                ErrorKind::kUsage);
  }
  return {};
}

Status validate_mirror_config(MirrorConfig& cfg) {
  if (cfg.upstreams.empty())
    return fail("mirror: no upstream configured (use --upstream NAME=URL)", ErrorKind::kUsage);
  std::set<std::string> names;
  for (auto& u : cfg.upstreams) {
    if (u.url.rfind("http://", 0) != 0 && u.url.rfind("https://", 0) != 0)
      return fail("mirror: upstream " + u.name + ": URL '" + u.url +
                      "' must start with http:// or https://",
                  ErrorKind::kUsage);
    while (!u.url.empty() && u.url.back() == '/') u.url.pop_back();
    if (!names.insert(u.name).second)
      return fail("mirror: upstream " + u.name + " is configured twice", ErrorKind::kUsage);
  }
  if (cfg.default_upstream.empty()) cfg.default_upstream = cfg.upstreams.front().name;
  if (!names.count(cfg.default_upstream))
    return fail("mirror: default upstream '" + cfg.default_upstream + "' is not configured",
                ErrorKind::kUsage);
  if (cfg.state_dir.empty()) return fail("mirror: no state dir", ErrorKind::kUsage);
  if (cfg.threads == 0) cfg.threads = std::max(1u, std::thread::hardware_concurrency());
  if (cfg.upstream_threads == 0) cfg.upstream_threads = 1;
  return {};
}

}  // namespace lockstep::registry
