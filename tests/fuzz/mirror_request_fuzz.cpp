// The mirror's reading of a request: Beast's HTTP parser with the server's
// limits, then the mirror's own routing and Range parsing, and the error
// body built from what they return. Routing must never hand on a repository,
// tag or registry name that could not be a file name or JSON text.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.hpp"
#include "registry-mirror/mirror_route.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::registry;
namespace http = boost::beast::http;

namespace {

const RouteTable& table() {
  static const RouteTable t = [] {
    RouteTable r;
    r.upstreams = {"docker.io", "local"};
    r.default_upstream = "local";
    r.docker_hub = {"docker.io"};
    r.registries = {{"docker.io", "docker.io"}, {"127.0.0.1:5000", "local"}};
    return r;
  }();
  return t;
}

void check_route(std::string_view target) {
  Route r = route_request(target, table());
  switch (r.endpoint) {
    case Endpoint::kManifest:
      fuzz::require(valid_tag(r.reference) || valid_digest_syntax(r.reference),
                    "a manifest reference is a tag or a digest");
      [[fallthrough]];
    case Endpoint::kBlob:
    case Endpoint::kTagsList:
      fuzz::require(valid_repo_name(r.repo), "a routed repository name is valid");
      fuzz::require(!r.upstream.empty(), "a routed request has an upstream");
      break;
    case Endpoint::kBadRequest:
      fuzz::require(!r.error_code.empty() && is_valid_utf8(r.error_message),
                    "a refusal has a code and a UTF-8 message");
      break;
    default:
      break;
  }
  fuzz::require(is_valid_utf8(r.unknown_registry), "an unknown registry name is UTF-8");
  std::string body = error_body(r.error_code.empty() ? "NAME_UNKNOWN" : r.error_code,
                                r.error_message, r.unknown_registry);
  fuzz::require(parse_json(body, "error body").has_value(), "the error body is JSON");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_route(bytes);  // the whole input as a target, past what Beast lets through

  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(1u << 20);
  parser.header_limit(64u << 10);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) ec = {};
    if (ec || n == 0) break;
    used += n;
  }
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  check_route(std::string_view(req.target().data(), req.target().size()));
  if (auto range = req.find(http::field::range); range != req.end()) {
    std::string_view v(range->value().data(), range->value().size());
    for (uint64_t total : {uint64_t{1}, uint64_t{1000}, UINT64_MAX}) {
      uint64_t first = 0, last = 0;
      if (parse_byte_range(v, total, first, last))
        fuzz::require(first <= last && last < total, "a range lies within the blob");
    }
  }
  return 0;
}
