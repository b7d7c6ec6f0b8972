# Every dependency comes from a Debian 12 package installed by scripts/setup.sh.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(CURL REQUIRED)
find_package(LibArchive REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(tl-expected REQUIRED)
find_package(Boost 1.74 REQUIRED)
pkg_check_modules(LIBGIT2 REQUIRED IMPORTED_TARGET libgit2)
pkg_check_modules(LIBSECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(LIBZSTD REQUIRED IMPORTED_TARGET libzstd)
# lockstep server: PostgreSQL's client library (libpq-dev).
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
# The tests' framework only when the tests are built (the quick start and
# packaging build lockstep alone, without libgtest-dev installed).
if(LOCKSTEP_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
