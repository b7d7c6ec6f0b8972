#include "runner/engine/lock_use.hpp"

#include <cstdio>
#include <set>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "pipeline/lock_inputs.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/engine/project.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

Result<std::optional<pipeline::Lockfile>> load_run_lock(const fs::path& workflow,
                                                        const fs::path& explicit_lock, bool frozen,
                                                        bool* stale) {
  fs::path path = explicit_lock.empty() ? default_lock_path(workflow) : explicit_lock;
  std::string name = explicit_lock.empty() ? "lockstep.lock" : explicit_lock.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (!explicit_lock.empty())
      return fail("--lock " + explicit_lock.string() + ": no such file", ErrorKind::kUsage);
    if (frozen)
      return fail("--frozen: no lockstep.lock for " + workflow.string() + " (looked for " +
                      path.string() + "): run 'lockstep lock'",
                  ErrorKind::kUsage);
    return std::optional<pipeline::Lockfile>{};
  }
  auto text = read_file(path);
  if (!text) return fail(std::move(text.error()).set_kind(ErrorKind::kUsage));
  auto lock = pipeline::parse_lockfile(*text, path.string());
  if (!lock) return fail(std::move(lock.error()).set_kind(ErrorKind::kUsage));

  fs::path locked_wf =
      (fs::absolute(path, ec).parent_path() / lock->workflow_path).lexically_normal();
  fs::path this_wf = fs::absolute(workflow, ec).lexically_normal();
  if (locked_wf != this_wf) {
    std::string msg = name + " locks " + lock->workflow_path + ", not " + workflow.string();
    if (frozen || !explicit_lock.empty())
      return fail(msg + ": run 'lockstep lock " + workflow.string() + " --output FILE' and use it",
                  ErrorKind::kUsage);
    std::fprintf(stderr, "lockstep: warning: %s; the lock is not used\n", msg.c_str());
    return std::optional<pipeline::Lockfile>{};
  }
  LS_TRY_ASSIGN(std::string wf_bytes, read_file(workflow));
  if (sha256_of(wf_bytes).str() != lock->workflow_digest) {
    std::string msg = name + " does not match " + workflow.string() + ": run 'lockstep lock'";
    if (frozen && stale) {
      *stale = true;
      return std::optional<pipeline::Lockfile>(std::move(*lock));
    }
    if (frozen) return fail(msg, ErrorKind::kUsage);
    std::fprintf(stderr, "lockstep: warning: %s (its pins are used where they still apply)\n",
                 msg.c_str());
  }
  return std::optional<pipeline::Lockfile>(std::move(*lock));
}

Status check_frozen(const pipeline::Lockfile& lock, const std::vector<pipeline::JobInstance>& plan,
                    const pipeline::EvalContext& base,
                    const std::map<std::string, std::string>& platforms,
                    const std::string& source_url, const std::string& stale,
                    const std::set<std::string>& workflow_pins) {
  LS_TRY_ASSIGN(std::vector<pipeline::InputUse> uses,
                pipeline::collect_instance_inputs(plan, base, platforms));
  std::vector<std::string> problems;
  std::set<std::string> used_images, used_actions;
  std::set<std::pair<std::string, std::string>> used_sources;
  for (const auto& u : uses) {
    std::string where = " (job " + u.instance + ")";
    if (!u.unlockable.empty()) {
      problems.push_back(std::string(pipeline::to_string(u.kind)) + " '" + u.text + "'" + where +
                         " " + u.unlockable + " and cannot be pinned by lockstep.lock");
      continue;
    }
    if (u.kind == pipeline::InputUse::Kind::kImage) {
      used_images.insert(u.reference);
      const pipeline::LockedImage* img = lock.find_image(u.reference);
      if (!img || !img->manifests.count(std::string(pipeline::kLockPlatform)))
        problems.push_back("image '" + u.reference + "'" + where +
                           " is not pinned by lockstep.lock");
      continue;
    }
    if (u.kind == pipeline::InputUse::Kind::kAction) {
      used_actions.insert(u.reference + "@" + u.ref);
      if (!lock.find_action(u.reference, u.ref))
        problems.push_back("action '" + u.reference + "@" + u.ref + "'" + where +
                           " is not pinned by lockstep.lock");
      continue;
    }
    if (u.reference.empty() && u.ref.empty()) continue;  // the run's own commit
    std::string url = u.reference.empty() ? source_url : u.reference;
    std::string ref = u.ref.empty() ? "HEAD" : u.ref;
    used_sources.insert({url, ref});
    if (!lock.find_source(url, ref))
      problems.push_back("checkout of '" + (u.reference.empty() ? url : u.reference) + "'" +
                         (u.ref.empty() ? "" : " at '" + u.ref + "'") + where +
                         " is not pinned by lockstep.lock");
  }
  if (stale.empty()) {
    if (problems.empty()) return {};
    std::string msg;
    for (const auto& p : problems)
      msg += (msg.empty() ? "" : "\nlockstep: error: ") + ("--frozen: " + p);
    return fail(msg, ErrorKind::kUsage);
  }
  // The workflow changed since it was locked: what the lock pins that the
  // workflow no longer uses is the other half of each change.
  for (const auto& i : lock.images)
    if (!used_images.count(i.reference))
      problems.push_back("image '" + i.reference + "' is pinned but no longer used");
  for (const auto& a : lock.actions)
    if (!used_actions.count(a.repository + "@" + a.ref) &&
        !workflow_pins.count(a.repository + "@" + a.ref) && !a.jobs.empty())
      problems.push_back("action '" + a.repository + "@" + a.ref +
                         "' is pinned but no longer used by a step of the workflow");
  for (const auto& src : lock.sources)
    if (!src.workflow_repository && !used_sources.count({src.url, src.ref}))
      problems.push_back("checkout of '" + src.url + "' at '" + src.ref +
                         "' is pinned but no longer used");
  std::string msg = stale;
  for (const auto& p : problems) msg += "\nlockstep: error:   " + p;
  return fail(msg, ErrorKind::kUsage);
}

ImagePin pin_image(const pipeline::Lockfile* lock, const std::string& reference) {
  ImagePin pin{reference, ""};
  if (!lock) return pin;
  const pipeline::LockedImage* img = lock->find_image(reference);
  if (!img) return pin;
  auto it = img->manifests.find(std::string(pipeline::kLockPlatform));
  if (it == img->manifests.end()) return pin;
  pin.locked = it->second;
  // name@digest: the store finds it by digest whatever its tags; when it is
  // not there, the pull (or its error) names the image.
  if (auto ref = registry::Reference::parse(reference))
    pin.lookup = ref->name() + "@" + it->second;
  else
    pin.lookup = it->second;
  return pin;
}

Status verify_image_pin(const ImagePin& pin, const std::string& reference,
                        const cache::ImageRecord& got) {
  if (pin.locked.empty() || got.manifest.str() == pin.locked) return {};
  return fail("image '" + reference + "': lockstep.lock pins " + pin.locked + " but " + pin.lookup +
                  " gave " + got.manifest.str(),
              ErrorKind::kIntegrity);
}

std::optional<std::string> pin_checkout(const pipeline::Lockfile* lock,
                                        const std::string& repository, const std::string& ref,
                                        const std::string& source_url) {
  if (!lock || (repository.empty() && ref.empty())) return std::nullopt;
  const pipeline::LockedSource* s =
      lock->find_source(repository.empty() ? source_url : repository, ref.empty() ? "HEAD" : ref);
  if (!s) return std::nullopt;
  return s->commit;
}

}  // namespace lockstep::runner
