#ifndef WORDSTAT_CRC32_H
#define WORDSTAT_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, as zlib and gzip compute it). Feed the previous result
 * back in to continue over more data; start with 0. */
uint32_t crc32_update(uint32_t crc, const unsigned char *data, size_t len);

#endif
