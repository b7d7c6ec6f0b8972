#include "crc32.h"

/* Bitwise, table-free: the table would be 1 KiB of the binary for a tool that
 * reads small inputs. */
uint32_t crc32_update(uint32_t crc, const unsigned char *data, size_t len) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
