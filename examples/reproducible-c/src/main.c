/* wordstat: lines, words and bytes of its input, the most frequent words, and
 * a CRC-32 of the bytes. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "count.h"
#include "crc32.h"
#include "die.h"

#ifndef BUILD_STAMP
#define BUILD_STAMP "unknown"
#endif

struct totals {
  unsigned long lines, bytes;
  uint32_t crc;
};

static void scan(FILE *in, const char *name, struct counter *words, struct totals *t) {
  unsigned char buf[4096];
  char word[256];
  size_t len = 0, n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
    t->crc = crc32_update(t->crc, buf, n);
    t->bytes += n;
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') ++t->lines;
      if (isalnum(buf[i]) && len < sizeof word) {
        word[len++] = (char)tolower(buf[i]);
      } else if (len > 0) {
        counter_add(words, word, len);
        len = 0;
      }
    }
  }
  if (ferror(in)) DIE("read %s: %s", name, strerror(errno));
  if (len > 0) counter_add(words, word, len);
}

int main(int argc, char **argv) {
  int top = 5, first = 1;
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("wordstat 1.0 (built %s with %s)\n", BUILD_STAMP, __VERSION__);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "--top") == 0) {
    top = atoi(argv[2]);
    if (top < 0) DIE("--top needs a number >= 0, got '%s'", argv[2]);
    first = 3;
  }
  struct counter *words = counter_new();
  struct totals t = {0, 0, 0};
  if (first == argc) scan(stdin, "stdin", words, &t);
  for (int i = first; i < argc; ++i) {
    FILE *in = fopen(argv[i], "rb");
    if (!in) DIE("open %s: %s", argv[i], strerror(errno));
    scan(in, argv[i], words, &t);
    fclose(in);
  }
  size_t n = 0;
  struct word_count *sorted = counter_sorted(words, &n);
  printf("lines %lu\nwords %zu\ndistinct %zu\nbytes %lu\ncrc32 %08x\n", t.lines,
         counter_total(words), n, t.bytes, (unsigned)t.crc);
  for (size_t i = 0; i < n && i < (size_t)top; ++i)
    printf("%6lu %s\n", sorted[i].count, sorted[i].word);
  free(sorted);
  counter_free(words);
  return 0;
}
