#include "pipeline/lockfile.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "pipeline/diagnostic.hpp"

namespace lockstep::pipeline {

namespace {

using OJson = nlohmann::ordered_json;

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
  });
}

bool is_digest(std::string_view s) {
  return s.size() == 71 && s.substr(0, 7) == "sha256:" && is_hex(s.substr(7));
}

bool is_commit(std::string_view s) {
  return s.size() == 40 && is_hex(s);
}

Lockfile sorted(Lockfile lock) {
  for (auto& i : lock.images) {
    std::sort(i.jobs.begin(), i.jobs.end());
    i.jobs.erase(std::unique(i.jobs.begin(), i.jobs.end()), i.jobs.end());
  }
  for (auto& s : lock.sources) {
    std::sort(s.jobs.begin(), s.jobs.end());
    s.jobs.erase(std::unique(s.jobs.begin(), s.jobs.end()), s.jobs.end());
  }
  for (auto& a : lock.actions) {
    std::sort(a.jobs.begin(), a.jobs.end());
    a.jobs.erase(std::unique(a.jobs.begin(), a.jobs.end()), a.jobs.end());
  }
  std::sort(lock.actions.begin(), lock.actions.end(), [](const auto& a, const auto& b) {
    return std::tie(a.repository, a.ref) < std::tie(b.repository, b.ref);
  });
  std::sort(lock.images.begin(), lock.images.end(),
            [](const auto& a, const auto& b) { return a.reference < b.reference; });
  std::sort(lock.sources.begin(), lock.sources.end(), [](const auto& a, const auto& b) {
    return std::tie(a.url, a.ref) < std::tie(b.url, b.ref);
  });
  for (auto& f : lock.fetches) {
    std::sort(f.jobs.begin(), f.jobs.end());
    f.jobs.erase(std::unique(f.jobs.begin(), f.jobs.end()), f.jobs.end());
  }
  std::sort(lock.fetches.begin(), lock.fetches.end(),
            [](const auto& a, const auto& b) { return a.url < b.url; });
  auto key = [](const UnlockableInput& u) { return std::tie(u.job, u.kind, u.text, u.reason); };
  std::sort(lock.unlockable.begin(), lock.unlockable.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  lock.unlockable.erase(std::unique(lock.unlockable.begin(), lock.unlockable.end(),
                                    [&](const auto& a, const auto& b) { return key(a) == key(b); }),
                        lock.unlockable.end());
  return lock;
}

// Reads the YAML node tree yaml-cpp makes of the JSON text, so that every
// error has a line and column.
class Reader {
 public:
  Reader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  Result<Lockfile> run() {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text_));
    } catch (const YAML::ParserException& e) {
      return fail_at(e.mark.line + 1, e.mark.column + 1,
                     "not valid lockstep.lock JSON: " + e.msg +
                         " (truncated or edited by hand? run 'lockstep lock')");
    } catch (const YAML::Exception& e) {
      return fail_at(0, 0, std::string("cannot read: ") + e.what());
    }
    size_t first = text_.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return fail_at(1, 1, "empty lock file");
    if (!root.IsMap() || text_[first] != '{') return error(root, "expected a JSON object");

    Lockfile lock;
    // The schema first: a newer file may not match anything below.
    const YAML::Node schema = root["schema"];
    if (!schema) return error(root, "missing key 'schema'");
    LS_TRY_ASSIGN(std::string s, string(schema, "schema"));
    if (s.rfind(kLockSchemaPrefix, 0) != 0)
      return error(schema, "unknown schema '" + s + "' (expected lockstep.lock/v" +
                               std::to_string(kLockSchemaVersion) + ")");
    std::string num = s.substr(kLockSchemaPrefix.size());
    if (num.empty() || num.size() > 6 || !std::all_of(num.begin(), num.end(), ::isdigit))
      return error(schema, "unknown schema '" + s + "'");
    lock.schema = std::stoi(num);
    if (lock.schema > kLockSchemaVersion)
      return error(schema, "schema '" + s + "' is newer than this lockstep reads (lockstep.lock/v" +
                               std::to_string(kLockSchemaVersion) +
                               "): upgrade lockstep or run 'lockstep lock' again");
    if (lock.schema < 1) return error(schema, "unknown schema '" + s + "'");

    if (lock.schema >= 2) {
      LS_TRY(keys(root,
                  {"schema", "lockstep", "workflow", "images", "sources", "actions", "node-runtime",
                   "unlockable", "fetches"},
                  {"schema", "lockstep", "workflow"}, "the lock"));
    } else {
      LS_TRY(keys(root, {"schema", "lockstep", "workflow", "images", "sources", "unlockable"},
                  {"schema", "lockstep", "workflow"}, "the lock"));
    }
    LS_TRY_ASSIGN(lock.lockstep_version, string(root["lockstep"], "lockstep"));
    const YAML::Node wf = root["workflow"];
    LS_TRY(keys(wf, {"path", "digest"}, {"path", "digest"}, "'workflow'"));
    LS_TRY_ASSIGN(lock.workflow_path, string(wf["path"], "workflow path"));
    LS_TRY_ASSIGN(lock.workflow_digest, digest(wf["digest"], "workflow digest"));

    if (const YAML::Node images = root["images"]) {
      LS_TRY(seq(images, "'images'"));
      for (const auto& n : images) {
        LS_TRY(keys(n, {"reference", "source", "index", "manifests", "jobs"},
                    {"reference", "source", "manifests"}, "an image"));
        LockedImage img;
        LS_TRY_ASSIGN(img.reference, string(n["reference"], "image reference"));
        LS_TRY_ASSIGN(img.source, string(n["source"], "image source"));
        if (img.source != "registry" && img.source != "local")
          return error(n["source"],
                       "image source must be 'registry' or 'local', got '" + img.source + "'");
        if (n["index"]) {
          LS_TRY_ASSIGN(img.index, digest(n["index"], "image index"));
        }
        const YAML::Node m = n["manifests"];
        if (!m.IsMap() || m.size() == 0)
          return error(
              m, "'manifests' of image '" + img.reference + "' must map platforms to digests");
        for (const auto& kv : m) {
          LS_TRY_ASSIGN(std::string platform, string(kv.first, "platform"));
          LS_TRY_ASSIGN(img.manifests[platform], digest(kv.second, "manifest digest"));
        }
        if (n["jobs"]) {
          LS_TRY_ASSIGN(img.jobs, strings(n["jobs"], "'jobs'"));
        }
        for (const auto& other : lock.images)
          if (other.reference == img.reference)
            return error(n["reference"], "image '" + img.reference + "' is listed twice");
        lock.images.push_back(std::move(img));
      }
    }
    if (const YAML::Node sources = root["sources"]) {
      LS_TRY(seq(sources, "'sources'"));
      for (const auto& n : sources) {
        LS_TRY(keys(n, {"url", "ref", "commit", "workflow-repository", "jobs"},
                    {"url", "ref", "commit"}, "a source"));
        LockedSource src;
        LS_TRY_ASSIGN(src.url, string(n["url"], "source url"));
        LS_TRY_ASSIGN(src.ref, string(n["ref"], "source ref"));
        LS_TRY_ASSIGN(src.commit, string(n["commit"], "source commit"));
        if (!is_commit(src.commit))
          return error(n["commit"], "commit '" + src.commit + "' is not 40 lowercase hex digits");
        if (const YAML::Node w = n["workflow-repository"]) {
          LS_TRY_ASSIGN(std::string b, string(w, "workflow-repository"));
          if (b != "true" && b != "false")
            return error(w, "workflow-repository must be true or false");
          src.workflow_repository = b == "true";
        }
        if (n["jobs"]) {
          LS_TRY_ASSIGN(src.jobs, strings(n["jobs"], "'jobs'"));
        }
        lock.sources.push_back(std::move(src));
      }
    }
    if (const YAML::Node actions = root["actions"]) {
      LS_TRY(seq(actions, "'actions'"));
      for (const auto& n : actions) {
        LS_TRY(keys(n, {"repository", "ref", "commit", "url", "jobs"},
                    {"repository", "ref", "commit"}, "an action"));
        LockedAction a;
        LS_TRY_ASSIGN(a.repository, string(n["repository"], "action repository"));
        if (std::count(a.repository.begin(), a.repository.end(), '/') != 1 ||
            a.repository.front() == '/' || a.repository.back() == '/')
          return error(n["repository"],
                       "action repository '" + a.repository + "' is not OWNER/REPO");
        LS_TRY_ASSIGN(a.ref, string(n["ref"], "action ref"));
        LS_TRY_ASSIGN(a.commit, string(n["commit"], "action commit"));
        if (!is_commit(a.commit))
          return error(n["commit"], "commit '" + a.commit + "' is not 40 lowercase hex digits");
        if (n["url"]) {
          LS_TRY_ASSIGN(a.url, string(n["url"], "action url"));
        }
        if (n["jobs"]) {
          LS_TRY_ASSIGN(a.jobs, strings(n["jobs"], "'jobs'"));
        }
        if (lock.find_action(a.repository, a.ref))
          return error(n, "action '" + a.repository + "@" + a.ref + "' is listed twice");
        lock.actions.push_back(std::move(a));
      }
    }
    if (const YAML::Node rt = root["node-runtime"]) {
      LS_TRY_ASSIGN(lock.node_runtime, digest(rt, "node-runtime"));
    }
    if (const YAML::Node un = root["unlockable"]) {
      LS_TRY(seq(un, "'unlockable'"));
      for (const auto& n : un) {
        LS_TRY(keys(n, {"kind", "text", "job", "reason"}, {"kind", "text", "job", "reason"},
                    "an unlockable input"));
        UnlockableInput u;
        LS_TRY_ASSIGN(u.kind, string(n["kind"], "kind"));
        LS_TRY_ASSIGN(u.text, string(n["text"], "text"));
        LS_TRY_ASSIGN(u.job, string(n["job"], "job"));
        LS_TRY_ASSIGN(u.reason, string(n["reason"], "reason"));
        lock.unlockable.push_back(std::move(u));
      }
    }
    if (const YAML::Node fetches = root["fetches"]) {
      LS_TRY(seq(fetches, "'fetches'"));
      for (const auto& n : fetches) {
        LS_TRY(keys(n, {"url", "sha256", "jobs"}, {"url", "sha256"}, "a fetch"));
        LockedFetch f;
        LS_TRY_ASSIGN(f.url, string(n["url"], "fetch url"));
        LS_TRY_ASSIGN(f.sha256, digest(n["sha256"], "fetch sha256"));
        if (n["jobs"]) {
          LS_TRY_ASSIGN(f.jobs, strings(n["jobs"], "'jobs'"));
        }
        if (lock.find_fetch(f.url)) return error(n["url"], "fetch '" + f.url + "' is listed twice");
        lock.fetches.push_back(std::move(f));
      }
    }
    return lock;
  }

 private:
  tl::unexpected<Error> fail_at(int line, int col, const std::string& message) const {
    WorkflowError e{file_, line, col, message, ""};
    return tl::unexpected(Error(e.first_line(), 0, ErrorKind::kWorkflow));
  }
  tl::unexpected<Error> error(const YAML::Node& n, const std::string& message) const {
    if (!n.IsDefined()) return fail_at(0, 0, message);
    return fail_at(n.Mark().line + 1, n.Mark().column + 1, message);
  }

  Status keys(const YAML::Node& map, const std::vector<std::string_view>& known,
              const std::vector<std::string_view>& required, const std::string& where) const {
    if (!map.IsMap()) return error(map, where + " must be a JSON object");
    for (const auto& kv : map) {
      std::string k = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), k) == known.end())
        return error(kv.first, "unknown key '" + k + "' in " + where + did_you_mean(k, known));
    }
    for (auto r : required)
      if (!map[std::string(r)])
        return error(map, "missing key '" + std::string(r) + "' in " + where);
    return {};
  }
  Status seq(const YAML::Node& n, const std::string& what) const {
    if (!n.IsSequence()) return error(n, what + " must be a JSON array");
    return {};
  }
  Result<std::string> string(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return error(n, what + " must be a string");
    return n.Scalar();
  }
  Result<std::string> digest(const YAML::Node& n, const std::string& what) const {
    LS_TRY_ASSIGN(std::string s, string(n, what));
    if (!is_digest(s)) return error(n, what + " '" + s + "' is not a sha256:<64 hex> digest");
    return s;
  }
  Result<std::vector<std::string>> strings(const YAML::Node& n, const std::string& what) const {
    LS_TRY(seq(n, what));
    std::vector<std::string> out;
    for (const auto& e : n) {
      LS_TRY_ASSIGN(std::string s, string(e, what));
      out.push_back(std::move(s));
    }
    return out;
  }

  std::string_view text_;
  const std::string& file_;
};

}  // namespace

const LockedImage* Lockfile::find_image(std::string_view reference) const {
  for (const auto& i : images)
    if (i.reference == reference) return &i;
  return nullptr;
}

const LockedSource* Lockfile::find_source(std::string_view url, std::string_view ref) const {
  for (const auto& s : sources)
    if (s.url == url && s.ref == ref) return &s;
  return nullptr;
}

const LockedAction* Lockfile::find_action(std::string_view repository, std::string_view ref) const {
  for (const auto& a : actions)
    if (a.repository == repository && a.ref == ref) return &a;
  return nullptr;
}

const LockedFetch* Lockfile::find_fetch(std::string_view url) const {
  for (const auto& f : fetches)
    if (f.url == url) return &f;
  return nullptr;
}

const LockedSource* Lockfile::workflow_source() const {
  for (const auto& s : sources)
    if (s.workflow_repository) return &s;
  return nullptr;
}

std::string serialize_lockfile(const Lockfile& in) {
  Lockfile lock = sorted(in);
  OJson j;
  j["schema"] = std::string(kLockSchemaPrefix) + std::to_string(lock.schema);
  j["lockstep"] = lock.lockstep_version;
  j["workflow"] = {{"path", lock.workflow_path}, {"digest", lock.workflow_digest}};
  OJson images = OJson::array();
  for (const auto& i : lock.images) {
    OJson e;
    e["reference"] = i.reference;
    e["source"] = i.source;
    if (!i.index.empty()) e["index"] = i.index;
    OJson m = OJson::object();
    for (const auto& [p, d] : i.manifests) m[p] = d;  // std::map: sorted
    e["manifests"] = m;
    e["jobs"] = i.jobs;
    images.push_back(std::move(e));
  }
  j["images"] = std::move(images);
  OJson sources = OJson::array();
  for (const auto& s : lock.sources) {
    OJson e;
    e["url"] = s.url;
    e["ref"] = s.ref;
    e["commit"] = s.commit;
    if (s.workflow_repository) e["workflow-repository"] = "true";
    e["jobs"] = s.jobs;
    sources.push_back(std::move(e));
  }
  j["sources"] = std::move(sources);
  if (lock.schema >= 2) {
    OJson actions = OJson::array();
    for (const auto& a : lock.actions) {
      OJson e;
      e["repository"] = a.repository;
      e["ref"] = a.ref;
      e["commit"] = a.commit;
      if (!a.url.empty()) e["url"] = a.url;
      e["jobs"] = a.jobs;
      actions.push_back(std::move(e));
    }
    j["actions"] = std::move(actions);
    if (!lock.node_runtime.empty()) j["node-runtime"] = lock.node_runtime;
  }
  if (!lock.unlockable.empty()) {
    OJson un = OJson::array();
    for (const auto& u : lock.unlockable)
      un.push_back({{"kind", u.kind}, {"text", u.text}, {"job", u.job}, {"reason", u.reason}});
    j["unlockable"] = std::move(un);
  }
  if (!lock.fetches.empty()) {
    OJson fetches = OJson::array();
    for (const auto& f : lock.fetches) {
      OJson e;
      e["url"] = f.url;
      e["sha256"] = f.sha256;
      e["jobs"] = f.jobs;
      fetches.push_back(std::move(e));
    }
    j["fetches"] = std::move(fetches);
  }
  return j.dump(2) + "\n";
}

Result<Lockfile> parse_lockfile(std::string_view text, const std::string& file) {
  return Reader(text, file).run();
}

std::vector<std::string> lock_differences(const Lockfile& old, const Lockfile& now) {
  std::vector<std::string> out;
  if (old.workflow_digest != now.workflow_digest)
    out.push_back("workflow " + now.workflow_path + " changed (digest " + now.workflow_digest +
                  ", locked " + old.workflow_digest + ")");
  for (const auto& i : sorted(old).images) {
    const LockedImage* n = now.find_image(i.reference);
    if (!n) {
      out.push_back("image '" + i.reference + "' is locked but no longer used");
      continue;
    }
    if (i.index != n->index)
      out.push_back("image '" + i.reference + "': index now " +
                    (n->index.empty() ? "none" : n->index) + " (locked " +
                    (i.index.empty() ? "none" : i.index) + ")");
    for (const auto& [p, d] : i.manifests) {
      auto it = n->manifests.find(p);
      if (it == n->manifests.end())
        out.push_back("image '" + i.reference + "': " + p + " no longer resolved (locked " + d +
                      ")");
      else if (it->second != d)
        out.push_back("image '" + i.reference + "': " + p + " now " + it->second + " (locked " + d +
                      ")");
    }
    for (const auto& [p, d] : n->manifests)
      if (!i.manifests.count(p))
        out.push_back("image '" + i.reference + "': " + p + " " + d + " is not locked");
  }
  for (const auto& i : sorted(now).images)
    if (!old.find_image(i.reference))
      out.push_back("image '" + i.reference + "' is used but not locked");
  for (const auto& s : sorted(old).sources) {
    if (s.workflow_repository) continue;
    const LockedSource* n = now.find_source(s.url, s.ref);
    if (!n)
      out.push_back("source '" + s.url + "' ref '" + s.ref + "' is locked but no longer used");
    else if (n->commit != s.commit)
      out.push_back("source '" + s.url + "' ref '" + s.ref + "' now " + n->commit + " (locked " +
                    s.commit + ")");
  }
  for (const auto& s : sorted(now).sources)
    if (!s.workflow_repository && !old.find_source(s.url, s.ref))
      out.push_back("source '" + s.url + "' ref '" + s.ref + "' is used but not locked");
  for (const auto& a : sorted(old).actions) {
    const LockedAction* n = now.find_action(a.repository, a.ref);
    std::string name = "action '" + a.repository + "@" + a.ref + "'";
    if (!n)
      out.push_back(name + " is locked but no longer used");
    else if (n->commit != a.commit)
      out.push_back(name + " now " + n->commit + " (locked " + a.commit + ")");
  }
  for (const auto& a : sorted(now).actions)
    if (!old.find_action(a.repository, a.ref))
      out.push_back("action '" + a.repository + "@" + a.ref + "' is used but not locked");
  if (old.node_runtime != now.node_runtime) {
    if (now.node_runtime.empty())
      out.push_back("the Node.js runtime is locked but no longer used");
    else if (old.node_runtime.empty())
      out.push_back("the Node.js runtime " + now.node_runtime + " is used but not locked");
    else
      out.push_back("the Node.js runtime is now " + now.node_runtime + " (locked " +
                    old.node_runtime + ")");
  }
  return out;
}

}  // namespace lockstep::pipeline
