#include "count.h"

#include <stdlib.h>
#include <string.h>

#include "die.h"

struct counter {
  struct word_count *slots; /* open addressing, word == NULL when empty */
  size_t cap, used, total;
};

static size_t hash(const char *s, size_t len) {
  size_t h = 1469598103934665603u; /* FNV-1a */
  for (size_t i = 0; i < len; ++i) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
  return h;
}

struct counter *counter_new(void) {
  struct counter *c = calloc(1, sizeof *c);
  if (!c) DIE("out of memory");
  c->cap = 64;
  c->slots = calloc(c->cap, sizeof *c->slots);
  if (!c->slots) DIE("out of memory");
  return c;
}

void counter_free(struct counter *c) {
  for (size_t i = 0; i < c->cap; ++i) free(c->slots[i].word);
  free(c->slots);
  free(c);
}

static struct word_count *find(struct word_count *slots, size_t cap, const char *w, size_t len) {
  size_t i = hash(w, len) & (cap - 1);
  while (slots[i].word && (strlen(slots[i].word) != len || memcmp(slots[i].word, w, len) != 0))
    i = (i + 1) & (cap - 1);
  return &slots[i];
}

static void grow(struct counter *c) {
  size_t cap = c->cap * 2;
  struct word_count *slots = calloc(cap, sizeof *slots);
  if (!slots) DIE("out of memory");
  for (size_t i = 0; i < c->cap; ++i)
    if (c->slots[i].word) *find(slots, cap, c->slots[i].word, strlen(c->slots[i].word)) = c->slots[i];
  free(c->slots);
  c->slots = slots;
  c->cap = cap;
}

void counter_add(struct counter *c, const char *word, size_t len) {
  if (2 * (c->used + 1) > c->cap) grow(c);
  struct word_count *slot = find(c->slots, c->cap, word, len);
  if (!slot->word) {
    slot->word = malloc(len + 1);
    if (!slot->word) DIE("out of memory");
    memcpy(slot->word, word, len);
    slot->word[len] = '\0';
    ++c->used;
  }
  ++slot->count;
  ++c->total;
}

static int by_count_then_word(const void *a, const void *b) {
  const struct word_count *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->word, y->word);
}

struct word_count *counter_sorted(const struct counter *c, size_t *n) {
  struct word_count *out = malloc((c->used ? c->used : 1) * sizeof *out);
  if (!out) DIE("out of memory");
  size_t k = 0;
  for (size_t i = 0; i < c->cap; ++i)
    if (c->slots[i].word) out[k++] = c->slots[i];
  qsort(out, k, sizeof *out, by_count_then_word);
  *n = k;
  return out;
}

size_t counter_total(const struct counter *c) { return c->total; }
