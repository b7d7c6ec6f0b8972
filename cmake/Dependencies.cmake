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
# Boost 1.74 turns on co_await (the mirror's server) for clang only with
# libc++'s <experimental/coroutine>; clang with libstdc++'s <coroutine>
# (scripts/fuzz.sh builds that way) works as well.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  add_compile_definitions(BOOST_ASIO_HAS_CO_AWAIT=1)
endif()
pkg_check_modules(LIBGIT2 REQUIRED IMPORTED_TARGET libgit2)
pkg_check_modules(LIBSECCOMP REQUIRED IMPORTED_TARGET libseccomp)
# nftables rules of the egress network (Debian libnftables-dev): the library behind nft(8)
pkg_check_modules(LIBNFTABLES REQUIRED IMPORTED_TARGET libnftables)
pkg_check_modules(LIBZSTD REQUIRED IMPORTED_TARGET libzstd)
# lockstep server: PostgreSQL's client library (libpq-dev).
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
# The tests' framework only when the tests are built (the quick start and
# packaging build lockstep alone, without libgtest-dev installed).
if(LOCKSTEP_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
