// Serves the web UI: "/" is the page, "/ui/..." its stylesheet and script.
#include "server/server_impl.hpp"
#include "server/ui_assets.hpp"

namespace lockstep::server {

std::optional<HttpResponse> ui_route(const HttpRequest& req) {
  if (req.method != "GET") return std::nullopt;
  std::string path = req.path == "/" ? "/ui/index.html" : req.path;
  for (const auto& a : ui_assets()) {
    if (a.path != path) continue;
    HttpResponse r;
    r.content_type = std::string(a.content_type);
    r.body = std::string(a.body);
    // Everything comes from this server; nothing else may be loaded.
    r.headers.push_back(
        {"Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'"});
    r.headers.push_back({"X-Content-Type-Options", "nosniff"});
    return r;
  }
  return std::nullopt;
}

}  // namespace lockstep::server
