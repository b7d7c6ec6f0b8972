#pragma once
// Internal to egress/ (service.cpp and tls_tunnel.cpp only: it brings
// Boost.Asio): a CONNECT tunnel under HTTPS inspection (docs/network.md,
// "Inspecting HTTPS"). The proxy ends the job's TLS with a leaf of the run's
// CA, opens its own verified TLS to the origin, and relays HTTP/1.1 requests
// one at a time, each recorded like a plain-HTTP fetch.
#include <functional>
#include <map>
#include <string>
#include <utility>  // before Asio: its awaitable needs std::exchange
#include <vector>

#include <boost/asio.hpp>

#include "cache/blob_store.hpp"
#include "common/json.hpp"
#include "egress/http_head.hpp"
#include "egress/tls_inspect.hpp"

namespace lockstep::egress::detail {

// What a tunnel needs of its job's egress. The functions are called on the
// job's strand.
struct TunnelJob {
  Inspection* inspection = nullptr;
  const cache::BlobStore* store = nullptr;
  const std::map<std::string, std::string>* pins = nullptr;
  bool refuse_unpinned = false;
  std::function<void(Json)> add_fetch;
  std::function<void(const std::string&)> violation;  // a pin broken, an unpinned fetch refused
  std::function<void(const std::string&)> note;       // a line for the job's log
  std::function<std::string()> now;                   // a record timestamp
  // A strand beside the job's (on another of the service's threads) where
  // a response's body is hashed and kept while the tunnel relays the next
  // part; the job's own strand when unset.
  boost::asio::any_io_executor body_strand;
};

// `client` has sent "CONNECT t.host:t.port" (and `early`, any bytes after
// its head); the policy allows `targets`. Answers the CONNECT, then serves
// the tunnel until either side closes. `upstream` is the (closed) socket to
// connect to the origin with, when a request needs it.
boost::asio::awaitable<void> run_inspected_tunnel(
    boost::asio::ip::tcp::socket& client, boost::asio::ip::tcp::socket& upstream, Target t,
    std::vector<boost::asio::ip::tcp::endpoint> targets, std::string early, TunnelJob job);

}  // namespace lockstep::egress::detail
