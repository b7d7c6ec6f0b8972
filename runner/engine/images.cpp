#include "runner/engine/images.hpp"

namespace lockstep::runner {

ImageResolver::ImageResolver(cache::ImageStore& store, PullFn pull)
    : store_(store), pull_(std::move(pull)) {}

Result<PreparedImage> ImageResolver::get(const std::string& ref) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard lk(mu_);
    auto& s = slots_[ref];
    if (!s) s = std::make_shared<Slot>();
    slot = s;
  }
  std::call_once(slot->once, [&] {
    slot->result = [&]() -> Result<PreparedImage> {
      std::lock_guard lk(store_mu_);
      // A pull or unpack in progress keeps gc from deleting fresh blobs.
      auto store_lock = cache::StoreLock::shared(store_.state_dir());
      if (!store_lock) return fail(std::move(store_lock.error()).context("lock the image store"));
      auto rec = store_.resolve(ref);
      if (!rec) {
        if (rec.error().kind() != ErrorKind::kNotFound || !pull_)
          return fail(std::move(rec.error()).context("image " + ref));
        rec = pull_(ref);
        if (!rec) return fail(std::move(rec.error()).context("pull " + ref));
      }
      auto use = cache::UseLock::acquire(store_.state_dir(), rec->manifest);
      if (!use) return fail(std::move(use.error()).context("image " + ref));
      auto dirs = store_.layer_dirs(*rec);
      if (!dirs) return fail(std::move(dirs.error()).context("unpack " + ref));
      return PreparedImage{std::move(*rec), std::move(*dirs),
                           std::make_shared<cache::UseLock>(std::move(*use))};
    }();
  });
  return slot->result;
}

}  // namespace lockstep::runner
