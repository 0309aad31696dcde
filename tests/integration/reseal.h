/* reseal.h - puts known material behind a SOFTWARE key, for known-answer tests: the
 * module never reveals its material, so a test seals a value it chose, as the module
 * would (AES-256-GCM by the backend under the token master key, AAD key id || version),
 * and writes it over the key's sealed row. Only with the module finalised. */
#ifndef CMKP11_TEST_RESEAL_H
#define CMKP11_TEST_RESEAL_H

#include <stddef.h>

/* Reseals version of the key with alias to material (len bytes). 0 on success. */
int reseal_known_material(const char *alias, unsigned long version, const unsigned char *material,
                          size_t len);

#endif
