# Writes OUT, a C++ file holding the init program's bytes (IN), so the
# executor carries pid 1 of its containers in its own binary.
# Usage: cmake -DIN=lockstep-init -DOUT=init_blob.cpp -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# One line per 32 bytes keeps the file readable by editors and diff tools.
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT}.tmp "// Generated from the init program by embed.cmake; do not edit.
#include \"executor/init_program/blob.hpp\"

namespace lockstep::executor::detail {

alignas(64) const unsigned char kInitProgram[] = {
${bytes}
};
const size_t kInitProgramSize = ${size};

}  // namespace lockstep::executor::detail
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
