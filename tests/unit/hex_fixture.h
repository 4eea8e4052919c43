/* Bytes written as hex, shared by the msgpack and wire tests. */
#ifndef TP_TEST_HEX_FIXTURE_H
#define TP_TEST_HEX_FIXTURE_H

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parse "92 01 80" into out; returns the byte count. */
static inline size_t hex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(s, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

#endif
