#pragma once
// lockstep.lock in `lockstep run`: which lock applies, `--frozen`'s checks
// before any job starts, and pinning each image and checkout as a job
// resolves it. See docs/lockfile.md.
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cache/image_store.hpp"
#include "common/error.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/lockfile.hpp"
#include "pipeline/model.hpp"

namespace lockstep::runner {

// The lock for `workflow`: `explicit_lock` (--lock) when given, else
// lockstep.lock of the project when it exists, else none (nullopt).
// Refused (kUsage): an unreadable or malformed lock; a lock made for another
// workflow when it was named with --lock or `frozen`; with `frozen`, a
// missing lock or one whose workflow digest differs ("lockstep.lock does not
// match .github/workflows/ci.yml: run 'lockstep lock'"). Otherwise such a
// lock is used with a warning (another workflow's lock: ignored). With
// `frozen` and `stale` given, a lock whose workflow digest differs is
// returned with *stale set, for check_frozen to say what changed.
Result<std::optional<pipeline::Lockfile>> load_run_lock(const std::filesystem::path& workflow,
                                                        const std::filesystem::path& explicit_lock,
                                                        bool frozen, bool* stale = nullptr);

// --frozen: every image, checkout and action of `plan` must be pinned by
// `lock`; each one that is not is a line of the kUsage error ("--frozen:
// image 'alpine:3.19' (job build) is not pinned by lockstep.lock").
// `source_url` is the workflow's own repository (checkouts without
// `repository:`). `stale` (non-empty: the lock was made for another version
// of this workflow, and this is what to say about it, "lockstep.lock does
// not match ci.yml: run 'lockstep lock'") makes it an error in any case,
// listing each input not pinned and each pin no longer used.
// `workflow_pins`: the "owner/repo@ref" pins the run's reusable workflows
// use (pinned already, or they could not have been read), so that they do
// not count as pins no longer used.
Status check_frozen(const pipeline::Lockfile& lock, const std::vector<pipeline::JobInstance>& plan,
                    const pipeline::EvalContext& base,
                    const std::map<std::string, std::string>& platforms,
                    const std::string& source_url, const std::string& stale = "",
                    const std::set<std::string>& workflow_pins = {});

// How a job asks the image resolver for `reference`: by the locked manifest
// digest when the lock pins it, else by the reference itself.
struct ImagePin {
  std::string lookup;
  std::string locked;  // manifest digest; empty when not pinned
};
ImagePin pin_image(const pipeline::Lockfile* lock, const std::string& reference);
// The resolved image must be exactly the locked manifest.
Status verify_image_pin(const ImagePin& pin, const std::string& reference,
                        const cache::ImageRecord& got);

// The locked commit for an actions/checkout of `repository` (as written; ""
// = `source_url`) at `ref` (as written; "" = HEAD); nullopt when not pinned
// or when it is the workflow's own repository at the run's commit.
std::optional<std::string> pin_checkout(const pipeline::Lockfile* lock,
                                        const std::string& repository, const std::string& ref,
                                        const std::string& source_url);

}  // namespace lockstep::runner
