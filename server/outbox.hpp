#pragma once
// Posts the commit statuses that state changes wrote to status_outbox
// (docs/server.md, "Commit statuses"): oldest first, in order per commit and
// context, to GitHub's, Gitea's or GitLab's status API. A failure without an
// answer, a 5xx or a 429 is retried with back-off (1 s doubling to 5 min,
// forever); any other 4xx is recorded as failed and not retried.
#include <string>

#include "common/error.hpp"
#include "server/crypto.hpp"
#include "server/pg.hpp"

namespace lockstep::server {

class StatusSender {
 public:
  // `public_url` prefixes the rows' target paths ("http://ci.example").
  StatusSender(pg::Pool& db, const SecretBox& box, std::string public_url)
      : db_(db), box_(box), public_url_(std::move(public_url)) {}
  // Sends every row that is due; returns how many were accepted.
  Result<int> send_due();

 private:
  pg::Pool& db_;
  const SecretBox& box_;
  std::string public_url_;
};

}  // namespace lockstep::server
