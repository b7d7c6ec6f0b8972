#include "common/digest.hpp"

#include <fcntl.h>
#include <openssl/evp.h>

#include "common/fd.hpp"

namespace lockstep {

Result<Digest> Digest::parse(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  if (s.substr(0, kPrefix.size()) != kPrefix || s.size() != kPrefix.size() + 64)
    return fail("invalid digest '" + std::string(s) + "' (expected sha256:<64 hex digits>)",
                ErrorKind::kUsage);
  Digest d;
  for (char c : s.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return fail("invalid digest '" + std::string(s) + "' (expected lowercase hex)",
                  ErrorKind::kUsage);
  }
  d.hex_ = std::string(s.substr(kPrefix.size()));
  return d;
}

Digest Digest::from_bytes(const std::array<uint8_t, 32>& raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  Digest d;
  d.hex_.reserve(64);
  for (uint8_t b : raw) {
    d.hex_ += kHex[b >> 4];
    d.hex_ += kHex[b & 15];
  }
  return d;
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t len) {
  EVP_DigestUpdate(impl_->ctx, data, len);
}

Digest Sha256::finish() {
  std::array<uint8_t, 32> raw{};
  unsigned int n = 0;
  EVP_DigestFinal_ex(impl_->ctx, raw.data(), &n);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  return Digest::from_bytes(raw);
}

Digest sha256_of(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish();
}

Result<Digest> sha256_of_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path.string());
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path.string());
    }
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  return h.finish();
}

}  // namespace lockstep
