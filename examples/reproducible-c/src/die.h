#ifndef WORDSTAT_DIE_H
#define WORDSTAT_DIE_H

#include <stdio.h>
#include <stdlib.h>

/* Fatal errors name the source line that raised them. __FILE__ is the path
 * the compiler was given, so without -ffile-prefix-map the build directory
 * ends up in the binary. */
#define DIE(...)                                                    \
  do {                                                              \
    fprintf(stderr, "wordstat: error (%s:%d): ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__);                                   \
    fputc('\n', stderr);                                            \
    exit(2);                                                        \
  } while (0)

#endif
