#ifndef WORDSTAT_COUNT_H
#define WORDSTAT_COUNT_H

#include <stddef.h>

struct word_count {
  char *word;
  unsigned long count;
};

/* Word frequencies: words are runs of letters and digits, folded to lower
 * case (ASCII). */
struct counter;

struct counter *counter_new(void);
void counter_free(struct counter *c);
void counter_add(struct counter *c, const char *word, size_t len);
/* The distinct words, most frequent first, ties in byte order of the word:
 * the order never depends on the hash table's layout. */
struct word_count *counter_sorted(const struct counter *c, size_t *n);
size_t counter_total(const struct counter *c);

#endif
