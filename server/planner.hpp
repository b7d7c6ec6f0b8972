#pragma once
// Turns stored deliveries into runs (docs/server.md, "Webhooks"): fetches the
// repository into the server's git mirror, builds a pull request's merge
// commit, reads the workflows at the commit, keeps those whose `on:` matches,
// expands each into jobs (one per matrix cell) and inserts the run with its
// jobs and pending statuses, in one transaction with the delivery's new
// state. A delivery is taken with SKIP LOCKED, so several planners (threads
// or servers) never plan one twice.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "server/pg.hpp"
#include "server/webhook.hpp"

namespace lockstep::server {

nlohmann::json event_to_json(const HookEvent& ev);
HookEvent event_from_json(const nlohmann::json& j);

// Where the planner resolves the images a job plan pins (docs/server.md,
// "The job plan"): registries spoken to over plain HTTP, and a pull-through
// mirror (`lockstep mirror serve`) to ask instead of each registry.
struct ImagePinSettings {
  std::vector<std::string> insecure_registries;
  std::string mirror;
};

class Planner {
 public:
  Planner(pg::Pool& db, std::filesystem::path state_dir, ImagePinSettings pins = {})
      : db_(db), state_dir_(std::move(state_dir)), pins_(std::move(pins)) {}
  // Plans the oldest new delivery; false when there was none.
  Result<bool> plan_one();

 private:
  pg::Pool& db_;
  std::filesystem::path state_dir_;
  ImagePinSettings pins_;
};

// Records a delivery (deduplicated by id); true when it was new. The caller
// wakes the planner.
Result<bool> store_delivery(pg::Pool& db, int64_t repo_id, const std::string& delivery_id,
                            const HookEvent& ev);

// The poller's pass over one repository: every branch whose head moved since
// the last look becomes a push delivery keyed like a webhook's would be.
Result<int> poll_repo(pg::Pool& db, const std::filesystem::path& state_dir, int64_t repo_id);

}  // namespace lockstep::server
