#include "pipeline/project_config.hpp"

#include <yaml-cpp/yaml.h>

#include "common/fs.hpp"
#include "common/utf8.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/yaml_documents.hpp"

namespace lockstep::pipeline {

namespace {

class ConfigReader {
 public:
  ConfigReader(std::string_view source, const std::string& file) : source_(source), file_(file) {}

  Result<ProjectConfig> run() {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(source_));
    } catch (const YAML::ParserException& e) {
      return fail(workflow_error(file_, source_, {e.mark.line + 1, e.mark.column + 1},
                                 "invalid YAML: " + e.msg));
    }
    if (auto m = find_scalar_not_utf8(root))
      return fail(
          workflow_error(file_, source_, {m->line + 1, m->column + 1}, kNotUtf8AfterEscapes));
    ProjectConfig cfg;
    cfg.file = file_;
    if (root.IsNull()) return cfg;
    if (!root.IsMap()) return error(root, "expected a mapping of settings");
    for (const auto& kv : root) {
      LS_TRY_ASSIGN(std::string key, scalar(kv.first, "a key"));
      const YAML::Node& v = kv.second;
      if (key == "runs-on") {
        if (!v.IsMap()) return error(v, "'runs-on' must map labels to images");
        for (const auto& p : v) {
          LS_TRY_ASSIGN(std::string label, scalar(p.first, "a runs-on label"));
          LS_TRY_ASSIGN(std::string image, scalar(p.second, "the image of label '" + label + "'"));
          if (image.empty()) return error(p.second, "label '" + label + "' maps to no image");
          cfg.platforms[label] = image;
        }
      } else if (key == "defaults") {
        LS_TRY(defaults(v, cfg));
      } else if (key == "mirror") {
        LS_TRY_ASSIGN(cfg.mirror, scalar(v, "'mirror'"));
        if (cfg.mirror.rfind("http://", 0) != 0 && cfg.mirror.rfind("https://", 0) != 0)
          return error(v, "'mirror' must be an http:// or https:// URL, got '" + cfg.mirror + "'");
      } else if (key == "userns") {
        LS_TRY_ASSIGN(std::string b, scalar(v, "'userns'"));
        if (b != "true" && b != "false")
          return error(v, "'userns' must be true or false, got '" + b + "'");
        cfg.userns = b == "true";
      } else if (key == "actions-url") {
        LS_TRY_ASSIGN(cfg.actions_url, scalar(v, "'actions-url'"));
        if (cfg.actions_url.empty()) return error(v, "'actions-url' is empty");
      } else if (key == "actions") {
        if (!v.IsMap()) return error(v, "'actions' must map owners to URLs");
        for (const auto& p : v) {
          LS_TRY_ASSIGN(std::string owner, scalar(p.first, "an owner"));
          LS_TRY_ASSIGN(std::string url, scalar(p.second, "the URL of owner '" + owner + "'"));
          if (owner.empty() || owner.find('/') != std::string::npos)
            return error(p.first, "'" + owner + "' is not an owner (the part before '/' in uses:)");
          if (url.empty()) return error(p.second, "owner '" + owner + "' maps to no URL");
          cfg.action_owners[owner] = url;
        }
      } else if (key == "egress") {
        LS_TRY(egress(v, cfg));
      } else if (key == "state-dir") {
        LS_TRY_ASSIGN(cfg.state_dir, scalar(v, "'state-dir'"));
        if (cfg.state_dir.empty()) return error(v, "'state-dir' is empty");
      } else {
        return error(kv.first,
                     "unknown key '" + key + "'" +
                         did_you_mean(key, {"runs-on", "defaults", "mirror", "userns",
                                            "actions-url", "actions", "state-dir", "egress"}));
      }
    }
    return cfg;
  }

 private:
  Status defaults(const YAML::Node& n, ProjectConfig& cfg) const {
    if (!n.IsMap()) return error(n, "'defaults' must be a mapping");
    std::string text;
    for (const auto& kv : n) {
      LS_TRY_ASSIGN(std::string key, scalar(kv.first, "a key"));
      static const std::vector<std::string_view> known = {"memory", "cpus", "pids-limit",
                                                          "network"};
      if (std::find(known.begin(), known.end(), key) == known.end())
        return error(kv.first,
                     "unknown key '" + key + "' in 'defaults'" + did_you_mean(key, known));
      LS_TRY_ASSIGN(std::string value, scalar(kv.second, "defaults." + key));
      std::string one = "--" + key + " " + value;
      auto o = parse_container_options(one);
      if (!o) return error(kv.second, "defaults." + key + ": " + o.error().message());
      if (o->memory_bytes) cfg.defaults.memory_bytes = o->memory_bytes;
      if (o->cpus_milli) cfg.defaults.cpus_milli = o->cpus_milli;
      if (o->pids_limit) cfg.defaults.pids_limit = o->pids_limit;
      if (o->network) cfg.defaults.network = o->network;
      text += (text.empty() ? "" : " ") + one;
    }
    cfg.default_options = text;
    return {};
  }

  Status egress(const YAML::Node& n, ProjectConfig& cfg) const {
    if (!n.IsMap()) return error(n, "'egress' must be a mapping");
    YAML::Node ca_node;
    for (const auto& kv : n) {
      LS_TRY_ASSIGN(std::string key, scalar(kv.first, "a key"));
      if (key == "unpinned") {
        LS_TRY_ASSIGN(cfg.egress_unpinned, scalar(kv.second, "'egress.unpinned'"));
        if (cfg.egress_unpinned != "record" && cfg.egress_unpinned != "refuse")
          return error(kv.second, "'egress.unpinned' must be record or refuse, got '" +
                                      cfg.egress_unpinned + "'");
        continue;
      }
      if (key == "inspect") {
        LS_TRY_ASSIGN(std::string b, scalar(kv.second, "'egress.inspect'"));
        if (b != "true" && b != "false")
          return error(kv.second, "'egress.inspect' must be true or false, got '" + b + "'");
        cfg.egress_inspect = b == "true";
        continue;
      }
      if (key == "ca") {
        ca_node = kv.second;
        if (kv.second.IsSequence()) {
          for (const auto& item : kv.second) {
            LS_TRY_ASSIGN(std::string f, scalar(item, "an egress.ca file"));
            if (f.empty()) return error(item, "'egress.ca' names an empty file name");
            cfg.egress_ca.push_back(f);
          }
          if (cfg.egress_ca.empty()) return error(kv.second, "'egress.ca' is empty");
        } else {
          LS_TRY_ASSIGN(std::string f,
                        scalar(kv.second, "'egress.ca' (a file or a list of files)"));
          if (f.empty()) return error(kv.second, "'egress.ca' is empty");
          cfg.egress_ca.push_back(f);
        }
        continue;
      }
      if (key != "allow")
        return error(kv.first, "unknown key '" + key + "' in 'egress'" +
                                   did_you_mean(key, {"allow", "unpinned", "inspect", "ca"}));
      if (!kv.second.IsSequence()) return error(kv.second, "'egress.allow' must be a list");
      for (const auto& item : kv.second) {
        LS_TRY_ASSIGN(std::string text, scalar(item, "an egress.allow entry"));
        auto e = parse_egress_allow(text);
        if (!e) return error(item, e.error().message());
        cfg.egress_allow.push_back(std::move(*e));
      }
      if (cfg.egress_allow.empty())
        return error(kv.second, "'egress.allow' is empty (write \"*\" for every public address)");
    }
    // The proxy verifies origins itself only when it inspects.
    if (!cfg.egress_ca.empty() && !cfg.egress_inspect)
      return error(ca_node, "'egress.ca' applies only with 'egress.inspect: true'");
    return {};
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return error(n, what + " must be a string");
    return n.Scalar();
  }

  tl::unexpected<Error> error(const YAML::Node& n, std::string message) const {
    SourceLoc at{n.Mark().line + 1, n.Mark().column + 1};
    if (n.Mark().is_null()) at = {};
    return tl::unexpected(workflow_error(file_, source_, at, std::move(message)));
  }

  std::string_view source_;
  const std::string& file_;
};

}  // namespace

Result<ProjectConfig> parse_project_config(std::string_view yaml, const std::string& file) {
  LS_TRY(check_yaml_text(yaml, file, ErrorKind::kWorkflow));
  // The reader checks node types before it reads them; this keeps any other
  // yaml-cpp exception from escaping as a crash.
  try {
    return ConfigReader(yaml, file).run();
  } catch (const YAML::Exception& e) {
    SourceLoc at = e.mark.is_null() ? SourceLoc{} : SourceLoc{e.mark.line + 1, e.mark.column + 1};
    return fail(workflow_error(file, yaml, at, "invalid YAML: " + e.msg));
  }
}

Result<ProjectConfig> load_project_config(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) return fail(std::move(text.error()).context("read " + path.string()));
  return parse_project_config(*text, path.string());
}

}  // namespace lockstep::pipeline
