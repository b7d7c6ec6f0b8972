#pragma once
// sha256 digests in OCI form ("sha256:<64 lowercase hex>").
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace lockstep {

class Digest {
 public:
  Digest() = default;
  // Accepts "sha256:<64 hex>" only; anything else is an error naming the input.
  static Result<Digest> parse(std::string_view s);
  static Digest from_bytes(const std::array<uint8_t, 32>& raw);

  const std::string& hex() const { return hex_; }
  std::string str() const { return "sha256:" + hex_; }
  bool empty() const { return hex_.empty(); }
  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  std::string hex_;
};

// Incremental sha256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Digest sha256_of(std::string_view bytes);
Result<Digest> sha256_of_file(const std::filesystem::path& path);

}  // namespace lockstep
