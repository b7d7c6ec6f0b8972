#pragma once
// The server's tables (docs/server.md, "Schema"), created and upgraded by
// numbered migrations. apply_migrations() runs each missing one in its own
// transaction under an advisory lock, so servers starting together do not
// race, and records it in schema_migrations.
#include "common/error.hpp"
#include "server/pg.hpp"

namespace lockstep::server {

// The newest migration's number.
int schema_version();
Status apply_migrations(pg::Conn& c);

}  // namespace lockstep::server
