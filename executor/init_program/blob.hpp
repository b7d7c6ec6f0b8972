#pragma once
// The init program (init_program/main.cpp), built static and embedded in the
// executor by the build (executor/CMakeLists.txt).
#include <cstddef>

namespace lockstep::executor::detail {

extern const unsigned char kInitProgram[];
extern const size_t kInitProgramSize;

}  // namespace lockstep::executor::detail
