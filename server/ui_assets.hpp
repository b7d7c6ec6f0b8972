#pragma once
// The web UI's files, compiled into the binary (generated from server/ui/).
#include <string_view>
#include <vector>

namespace lockstep::server {

struct UiAsset {
  std::string_view path;  // "/ui/app.js"
  std::string_view content_type;
  std::string_view body;
};
const std::vector<UiAsset>& ui_assets();

}  // namespace lockstep::server
