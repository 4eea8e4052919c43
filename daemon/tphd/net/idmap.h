/* A small open-addressing hash map from uint32 keys to uint32 values, for
 * function ids (client id -> descriptor slot, client id -> trace-local id).
 * Keys must be below TP_IDMAP_EMPTY. Not thread-safe. */
#ifndef TP_IDMAP_H
#define TP_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define TP_IDMAP_EMPTY UINT32_MAX

/** Embed by value; zero-initialise ({0}) to get an empty map. Fields are
 *  private. */
typedef struct tp_idmap {
    uint32_t *keys, *vals;
    size_t cap, len;
} tp_idmap;

/** The value for key, or TP_IDMAP_EMPTY when absent. */
uint32_t tp_idmap_get(const tp_idmap *m, uint32_t key);
/** Insert or replace. Returns 0, -ENOMEM, or -EINVAL for key TP_IDMAP_EMPTY. */
int tp_idmap_put(tp_idmap *m, uint32_t key, uint32_t val);
/** Number of keys. */
size_t tp_idmap_len(const tp_idmap *m);
/** Free the memory; the map is empty afterwards. */
void tp_idmap_free(tp_idmap *m);

#endif
