#include "pipeline/action.hpp"

#include <algorithm>
#include <cctype>

#include "pipeline/parse.hpp"

namespace lockstep::pipeline {

namespace {

bool valid_name_part(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

std::vector<std::string_view> split_slash(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

// OWNER/REPO[/PATH]@REF; `what` names the kind in messages.
Result<ActionRef> repository_ref(std::string_view uses, const char* form) {
  std::string text(uses);
  size_t at = uses.rfind('@');
  std::string_view name = at == std::string_view::npos ? uses : uses.substr(0, at);
  auto parts = split_slash(name);
  bool ok = parts.size() >= 2 && std::all_of(parts.begin(), parts.end(), valid_name_part);
  if (!ok) return fail("invalid reference '" + text + "': expected " + form, ErrorKind::kWorkflow);
  if (at == std::string_view::npos || at + 1 == uses.size())
    return fail("'" + text + "' needs a version, as in '" + std::string(name) + "@v1'",
                ErrorKind::kWorkflow);
  ActionRef r;
  r.kind = ActionRef::Kind::kRepository;
  r.text = text;
  r.owner = parts[0];
  r.repo = parts[1];
  for (size_t i = 2; i < parts.size(); ++i) r.path += (i > 2 ? "/" : "") + std::string(parts[i]);
  r.ref = uses.substr(at + 1);
  if (r.ref.find_first_of(" \t:~^?*[\\") != std::string::npos)
    return fail("invalid version '" + r.ref + "' in '" + text + "'", ErrorKind::kWorkflow);
  return r;
}

}  // namespace

bool ActionRef::builtin() const {
  if (kind != Kind::kRepository) return false;
  std::string n = name();
  return std::find(kBuiltinActions.begin(), kBuiltinActions.end(), n) != kBuiltinActions.end();
}

Result<ActionRef> parse_action_ref(std::string_view uses) {
  std::string text(uses);
  if (uses.rfind("docker://", 0) == 0) {
    ActionRef r;
    r.kind = ActionRef::Kind::kDocker;
    r.text = text;
    r.image = text.substr(9);
    if (r.image.empty() || r.image.find_first_of(" \t") != std::string::npos)
      return fail("'" + text + "' needs an image, as in 'docker://alpine:3.19'",
                  ErrorKind::kWorkflow);
    return r;
  }
  if (uses.rfind("./", 0) == 0) {
    ActionRef r;
    r.kind = ActionRef::Kind::kLocal;
    r.text = text;
    r.local = text;
    return r;
  }
  return repository_ref(uses, "OWNER/REPO[/PATH]@REF, ./PATH or docker://IMAGE");
}

Result<ActionRef> parse_workflow_ref(std::string_view uses) {
  std::string text(uses);
  auto is_workflow_file = [](std::string_view p) {
    return p.ends_with(".yml") || p.ends_with(".yaml");
  };
  if (uses.rfind("./", 0) == 0) {
    ActionRef r;
    r.kind = ActionRef::Kind::kLocal;
    r.text = text;
    r.local = text;
    if (!is_workflow_file(uses) || text.find("/.github/workflows/") != 1 ||
        text.find('@') != std::string::npos)
      return fail("invalid reusable workflow '" + text +
                      "': expected ./.github/workflows/FILE.yml (a local workflow has no @REF)",
                  ErrorKind::kWorkflow);
    return r;
  }
  LS_TRY_ASSIGN(ActionRef r, repository_ref(uses,
                                            "OWNER/REPO/.github/workflows/FILE.yml@REF or "
                                            "./.github/workflows/FILE.yml"));
  if (r.path.rfind(".github/workflows/", 0) != 0 || !is_workflow_file(r.path) ||
      r.path.find('/', 18) != std::string::npos)
    return fail("invalid reusable workflow '" + text +
                    "': expected OWNER/REPO/.github/workflows/FILE.yml@REF",
                ErrorKind::kWorkflow);
  return r;
}

const ActionInput* ActionManifest::find_input(std::string_view n) const {
  for (const auto& i : inputs)
    if (i.name == n) return &i;
  return nullptr;
}

std::string input_env_name(std::string_view input) {
  std::string out = "INPUT_";
  for (char c : input) {
    if (c == ' ')
      out += '_';
    else
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace lockstep::pipeline
