#pragma once
// The server's cryptography, all from OpenSSL: HMAC-SHA256 and constant-time
// comparison for webhook signatures, random tokens and their hashes for
// agents and the admin, and AES-256-GCM for secrets at rest.
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace lockstep::server {

std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Equal length and content, in time that depends on the length only.
bool constant_time_equal(std::string_view a, std::string_view b);
std::string sha256_hex(std::string_view data);
std::string hex(std::string_view bytes);
// `n` random bytes from the CSPRNG, as hex.
Result<std::string> random_hex(size_t n);

// AES-256-GCM under a 32-byte key. The output is nonce (12) + ciphertext +
// tag (16); `aad` (associated data) is authenticated, not stored: decrypting
// with another aad fails.
class SecretBox {
 public:
  // Reads the key file, or makes it (32 random bytes, mode 0600) when it is
  // missing. A key file of the wrong size or readable by others is refused.
  static Result<SecretBox> open_or_create(const std::filesystem::path& key_file);
  static SecretBox from_key(std::string key) { return SecretBox(std::move(key)); }
  Result<std::string> seal(std::string_view plaintext, std::string_view aad) const;
  Result<std::string> open(std::string_view sealed, std::string_view aad) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace lockstep::server
