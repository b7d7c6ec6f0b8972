#include "common/error.hpp"

#include <cstring>

namespace lockstep {

Error Error::from_errno(std::string_view what, int errnum) {
  std::string m(what);
  m += ": ";
  m += std::strerror(errnum);
  return Error(std::move(m), errnum);
}

Error& Error::context(std::string_view what) & {
  std::string m(what);
  m += ": ";
  m += message_;
  message_ = std::move(m);
  return *this;
}

Error&& Error::context(std::string_view what) && {
  context(what);
  return std::move(*this);
}

}  // namespace lockstep
