#include "runner/engine/workflow_source.hpp"

#include "cache/git_mirror.hpp"
#include "cache/git_trees.hpp"
#include "cache/git_worktree.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

// The relative path of `file` under `root`, or empty when it is not under it.
std::string relative_under(const fs::path& file, const fs::path& root) {
  std::error_code ec;
  fs::path f = fs::weakly_canonical(fs::absolute(file, ec), ec);
  fs::path r = fs::weakly_canonical(fs::absolute(root, ec), ec);
  fs::path rel = f.lexically_relative(r);
  if (rel.empty() || *rel.begin() == "..") return "";
  return rel.generic_string();
}

}  // namespace

WorkflowFiles::WorkflowFiles(fs::path state_dir, ActionSources& sources, OwnRepository own,
                             const fs::path& workflow, bool frozen)
    : state_dir_(std::move(state_dir)),
      sources_(sources),
      own_(std::move(own)),
      workflow_(workflow),
      frozen_(frozen) {}

fs::path WorkflowFiles::project_root(const fs::path& workflow) {
  std::error_code ec;
  fs::path dir = fs::absolute(workflow, ec).parent_path();
  if (dir.filename() == "workflows" && dir.parent_path().filename() == ".github")
    return dir.parent_path().parent_path();
  return dir;
}

std::string WorkflowFiles::root_identity() const {
  std::string rel;
  std::error_code ec;
  if (!own_.commit.empty() && fs::is_directory(own_.url, ec))
    rel = relative_under(workflow_, own_.url);
  else if (own_.commit.empty())
    rel = relative_under(workflow_, project_root(workflow_));
  return rel.empty() ? "" : "@" + own_.commit + ":" + rel;
}

std::map<std::string, std::string> WorkflowFiles::files_read() const {
  std::lock_guard lk(mu_);
  return files_;
}

Result<std::string> WorkflowFiles::read_own(const std::string& path) {
  if (own_.commit.empty()) {
    fs::path file = project_root(workflow_) / path;
    auto text = read_file(file);
    if (!text)
      return fail("reusable workflow './" + path + "': cannot read " + file.string() + ": " +
                      std::string(text.error().message()),
                  ErrorKind::kNotFound);
    std::lock_guard lk(mu_);
    files_[path] = *text;
    return text;
  }
  std::error_code ec;
  fs::path repo = own_.url;
  if (own_.url.empty() || !fs::is_directory(repo, ec))
    repo = cache::GitMirrors(state_dir_).mirror_path(own_.url);
  auto text = cache::read_committed_file(repo, own_.commit, path, own_.patch);
  if (!text && text.error().kind() == ErrorKind::kNotFound)
    return fail("reusable workflow './" + path + "': no such file at commit " +
                    own_.commit.substr(0, 12) + " of " + own_.url +
                    (own_.patch.empty() ? " (commit it, or run with --dirty)" : ""),
                ErrorKind::kNotFound);
  if (!text) return fail(std::move(text.error()).context("reusable workflow './" + path + "'"));
  return text;
}

Result<std::shared_ptr<const pipeline::CalledWorkflow>> WorkflowFiles::load(
    const pipeline::CalledWorkflow* from, const pipeline::ActionRef& ref) {
  auto cw = std::make_shared<pipeline::CalledWorkflow>();
  std::string text;
  if (ref.kind == pipeline::ActionRef::Kind::kLocal) {
    cw->path = ref.local.substr(2);
    if (!from || from->repository.empty()) {
      cw->commit = own_.commit;
      LS_TRY_ASSIGN(text, read_own(cw->path));
    } else {
      // The repository and commit the calling workflow came from.
      cw->repository = from->repository;
      cw->ref = from->ref;
      cw->commit = from->commit;
      fs::path file = cache::GitTrees(state_dir_).path(from->commit) / cw->path;
      auto read = read_file(file);
      if (!read)
        return fail("reusable workflow '" + cw->name() + "': " + from->repository + " has no " +
                        cw->path + " at " + from->commit.substr(0, 12),
                    ErrorKind::kNotFound);
      text = std::move(*read);
    }
  } else {
    cw->repository = ref.repository();
    cw->ref = ref.ref;
    cw->path = ref.path;
    if (frozen_ && !sources_.pinned(ref))
      return fail("--frozen: reusable workflow '" + ref.text + "' is not pinned by lockstep.lock",
                  ErrorKind::kUsage);
    auto repo = sources_.resolve(ref, "repository");
    if (!repo) return fail(std::move(repo.error()).context("reusable workflow '" + ref.text + "'"));
    cw->commit = repo->commit;
    auto read = read_file(repo->tree / ref.path);
    if (!read)
      return fail("reusable workflow '" + ref.text + "': " + ref.repository() + " has no " +
                      ref.path + " at " + repo->commit.substr(0, 12),
                  ErrorKind::kNotFound);
    text = std::move(*read);
  }
  cw->digest = sha256_of(text).str();
  LS_TRY_ASSIGN(cw->workflow, pipeline::parse_workflow(text, cw->name()));
  return std::shared_ptr<const pipeline::CalledWorkflow>(std::move(cw));
}

}  // namespace lockstep::runner
