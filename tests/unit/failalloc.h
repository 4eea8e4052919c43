/* Allocation failure injection for unit tests linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc: every call from the test
 * and from the static tpproto library goes through these wrappers, so a test
 * can make the next allocations fail and check the -ENOMEM path. Criterion
 * itself is a shared library and keeps the real allocator. */
#ifndef TP_TEST_FAILALLOC_H
#define TP_TEST_FAILALLOC_H

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

/* Allocations left before every one fails; negative = never fail. volatile
 * because the compiler assumes malloc() and realloc() read no user global and
 * would otherwise drop the store that arms the failure as dead. */
static volatile long failalloc_after = -1;

static int failalloc_now(void)
{
    if (failalloc_after < 0)
        return 0;
    if (failalloc_after == 0)
        return 1;
    failalloc_after--;
    return 0;
}

void *__wrap_malloc(size_t n)
{
    return failalloc_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return failalloc_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return failalloc_now() ? NULL : __real_realloc(p, n);
}

#endif
