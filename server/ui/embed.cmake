# Writes OUT, a C++ file holding the UI's files as string literals, so the
# server serves them from its binary (no files to install, no external assets).
# Usage: cmake -DOUT=file.cpp -DDIR=ui -P embed.cmake
set(files index.html style.css app.js)
# (No "; charset" here: a semicolon would split the list. It is added below.)
set(types text/html text/css text/javascript)
set(body "// Generated from server/ui/ by embed.cmake; do not edit.\n#include \"server/ui_assets.hpp\"\n\nnamespace lockstep::server {\n\nconst std::vector<UiAsset>& ui_assets() {\n  static const std::vector<UiAsset> assets = {\n")
foreach(f t IN ZIP_LISTS files types)
  file(READ ${DIR}/${f} content)
  string(FIND "${content}" ")lsui\"" bad)
  if(NOT bad EQUAL -1)
    message(FATAL_ERROR "${f} contains the raw string delimiter")
  endif()
  string(APPEND body "      {\"/ui/${f}\", \"${t}; charset=utf-8\", R\"lsui(${content})lsui\"},\n")
endforeach()
string(APPEND body "  };\n  return assets;\n}\n\n}  // namespace lockstep::server\n")
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
