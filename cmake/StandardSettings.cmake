# Warnings and sanitizers as INTERFACE targets: every lockstep target links
# lockstep_warnings; sanitizers are opt-in build options so that two builds of
# one version never behave differently by accident.
option(LOCKSTEP_WERROR "Treat warnings as errors (on in CI)" OFF)
option(LOCKSTEP_ASAN "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(LOCKSTEP_TSAN "Build with ThreadSanitizer" OFF)
# Fuzzing (scripts/fuzz.sh): coverage instrumentation for libFuzzer plus
# ASan+UBSan, UB fatal, on every lockstep target; tests/fuzz/ then builds
# libFuzzer executables. clang only.
option(LOCKSTEP_FUZZ "Build tests/fuzz as libFuzzer targets (clang)" OFF)

add_library(lockstep_warnings INTERFACE)
target_compile_options(lockstep_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
  -Wimplicit-fallthrough -Wformat=2 -Wno-missing-field-initializers)
if(LOCKSTEP_WERROR)
  target_compile_options(lockstep_warnings INTERFACE -Werror)
endif()

add_library(lockstep_sanitizers INTERFACE)
if(LOCKSTEP_ASAN AND LOCKSTEP_TSAN)
  message(FATAL_ERROR "LOCKSTEP_ASAN and LOCKSTEP_TSAN cannot be combined")
endif()
if(LOCKSTEP_ASAN)
  target_compile_options(lockstep_sanitizers INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(lockstep_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(LOCKSTEP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LOCKSTEP_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(LOCKSTEP_TSAN)
    message(FATAL_ERROR "LOCKSTEP_FUZZ and LOCKSTEP_TSAN cannot be combined")
  endif()
  target_compile_options(lockstep_sanitizers INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(lockstep_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(LOCKSTEP_TSAN)
  target_compile_options(lockstep_sanitizers INTERFACE -fsanitize=thread)
  target_link_options(lockstep_sanitizers INTERFACE -fsanitize=thread)
endif()

# lockstep_module(NAME SOURCES... DEPS ...) declares one static library per folder.
function(lockstep_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${M_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${M_DEPS} PRIVATE lockstep_warnings lockstep_sanitizers)
  # Batches of sources compiled as one unit: the headers every file of a
  # library includes (nlohmann/json, fmt, spdlog, the standard library) are
  # parsed once per batch instead of once per file. A file that cannot share
  # a unit sets SKIP_UNITY_BUILD_INCLUSION in its folder's CMakeLists.txt.
  if(LOCKSTEP_UNITY_BUILD)
    set_target_properties(${name} PROPERTIES UNITY_BUILD ON
                          UNITY_BUILD_BATCH_SIZE ${LOCKSTEP_UNITY_BATCH})
  endif()
endfunction()

# lockstep_folder_module(NAME DEPS ...): one static library from every .cpp in
# the calling folder (not its subfolders).
function(lockstep_folder_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER srcs EXCLUDE REGEX "/main\\.cpp$")
  if(NOT srcs)  # a module that has only headers so far
    set(srcs ${CMAKE_CURRENT_BINARY_DIR}/${name}_empty.cpp)
    file(WRITE ${srcs} "// ${name} has no sources yet\n")
  endif()
  lockstep_module(${name} SOURCES ${srcs} DEPS ${M_DEPS})
endfunction()

# lockstep_test(NAME SOURCES... DEPS ... [NO_CTEST]): one GoogleTest binary
# whose tests CTest runs one per process (so they run in parallel and fail
# independently). NO_CTEST: built, but run only by a script that provides
# what the test needs (scripts/test-cgroup2-vm.sh).
function(lockstep_test name)
  cmake_parse_arguments(T "NO_CTEST" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                        lockstep_warnings lockstep_sanitizers)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(${name} PRIVATE
    LOCKSTEP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LOCKSTEP_BINARY="$<TARGET_FILE:lockstep>")
  if(T_NO_CTEST)
    return()
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()
