#pragma once
// lockstep's one error type for the lower layers (common, pipeline, cache,
// executor, registry-mirror): functions return Result<T> = tl::expected<T, Error>.
// An Error keeps the errno it came from (0 when there is none) and gains
// context on the way up: "mount overlay for job build (gcc): Invalid argument".
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace lockstep {

enum class ErrorKind {
  kGeneric,      // anything else
  kUsage,        // bad command line or bad user input (exit code 2)
  kWorkflow,     // invalid workflow file (exit code 2)
  kNotFound,     // a named thing does not exist
  kIntegrity,    // digest mismatch, corrupt data
  kUnavailable,  // a remote or resource is down; retrying may help
  kUnreachable,  // nothing answered at a remote's address (refused, no route, timed out)
  kUnsupported,  // valid request for something lockstep does not do
};

class Error {
 public:
  Error() = default;
  explicit Error(std::string message, int errnum = 0, ErrorKind kind = ErrorKind::kGeneric)
      : message_(std::move(message)), errnum_(errnum), kind_(kind) {}

  // "what: strerror(errnum)"; errnum is the caller's saved errno.
  static Error from_errno(std::string_view what, int errnum);

  // Prepends "what: " to the message; keeps errno and kind.
  Error& context(std::string_view what) &;
  Error&& context(std::string_view what) &&;

  const std::string& message() const { return message_; }
  int errnum() const { return errnum_; }
  ErrorKind kind() const { return kind_; }
  Error& set_kind(ErrorKind k) {
    kind_ = k;
    return *this;
  }

 private:
  std::string message_;
  int errnum_ = 0;
  ErrorKind kind_ = ErrorKind::kGeneric;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> fail(std::string message, ErrorKind kind = ErrorKind::kGeneric) {
  return tl::unexpected<Error>(Error(std::move(message), 0, kind));
}
// Reads errno at the call: call it right after the failing system call.
inline tl::unexpected<Error> fail_errno(std::string_view what) {
  return tl::unexpected<Error>(Error::from_errno(what, errno));
}
inline tl::unexpected<Error> fail(Error e) {
  return tl::unexpected<Error>(std::move(e));
}

}  // namespace lockstep

// LS_TRY(expr): evaluates a Result; on error returns it from the enclosing
// function. LS_TRY_ASSIGN(var, expr) binds the value.
#define LS_CONCAT_INNER(a, b) a##b
#define LS_CONCAT(a, b) LS_CONCAT_INNER(a, b)
#define LS_TRY(expr)                                                      \
  do {                                                                    \
    auto&& ls_try_result_ = (expr);                                       \
    if (!ls_try_result_) return ::tl::unexpected(ls_try_result_.error()); \
  } while (0)
#define LS_TRY_ASSIGN_IMPL(tmp, var, expr)        \
  auto tmp = (expr);                              \
  if (!tmp) return ::tl::unexpected(tmp.error()); \
  var = std::move(*tmp)
#define LS_TRY_ASSIGN(var, expr) LS_TRY_ASSIGN_IMPL(LS_CONCAT(ls_try_, __LINE__), var, expr)
