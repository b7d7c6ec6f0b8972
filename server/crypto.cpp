#include "server/crypto.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/digest.hpp"
#include "common/fs.hpp"

namespace lockstep::server {

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return hex(std::string_view(reinterpret_cast<char*>(out), len));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish().hex();
}

Result<std::string> random_hex(size_t n) {
  std::string raw(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) != 1)
    return fail("random bytes: OpenSSL's generator failed");
  return hex(raw);
}

namespace {
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
constexpr size_t kNonce = 12, kTag = 16, kKey = 32;
}  // namespace

Result<SecretBox> SecretBox::open_or_create(const std::filesystem::path& key_file) {
  struct stat st {};
  if (::stat(key_file.c_str(), &st) != 0) {
    if (errno != ENOENT) return fail_errno("secrets key " + key_file.string());
    std::string key(kKey, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKey) != 1)
      return fail("secrets key: OpenSSL's generator failed");
    std::error_code ec;
    std::filesystem::create_directories(key_file.parent_path(), ec);
    LS_TRY(write_file_atomic(key_file, key, 0600));
    return SecretBox(std::move(key));
  }
  if (st.st_mode & 077)
    return fail("secrets key " + key_file.string() +
                " is readable by other users: chmod 600 it (or it was not made by lockstep)");
  LS_TRY_ASSIGN(std::string key, read_file(key_file));
  if (key.size() != kKey)
    return fail("secrets key " + key_file.string() + " is " + std::to_string(key.size()) +
                " bytes, not 32");
  return SecretBox(std::move(key));
}

Result<std::string> SecretBox::seal(std::string_view plaintext, std::string_view aad) const {
  std::string out(kNonce + plaintext.size() + kTag, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonce) != 1) return fail("encrypt: OpenSSL's generator failed");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  auto key = reinterpret_cast<const unsigned char*>(key_.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, o) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + kNonce, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + kNonce + plaintext.size()) !=
          1)
    return fail("encrypt: AES-256-GCM failed");
  return out;
}

Result<std::string> SecretBox::open(std::string_view sealed, std::string_view aad) const {
  if (sealed.size() < kNonce + kTag) return fail("decrypt: value too short", ErrorKind::kIntegrity);
  size_t n = sealed.size() - kNonce - kTag;
  auto in = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string out(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  auto key = reinterpret_cast<const unsigned char*>(key_.data());
  std::string tag(sealed.substr(kNonce + n));
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key, in) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in + kNonce,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return fail("decrypt: wrong key or altered value", ErrorKind::kIntegrity);
  return out;
}

}  // namespace lockstep::server
