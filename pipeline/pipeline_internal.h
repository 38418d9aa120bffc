/* pipeline/pipeline_internal.h — open-addressing hash tables used by the
 * planner (not part of the public API). */
#ifndef FOLIO_PIPELINE_INTERNAL_H
#define FOLIO_PIPELINE_INTERNAL_H

#include "../common/common.h"

/* uint64 key -> int64 value; key 0 is reserved as "empty", so callers must
 * map a zero key to something else (term hashes of 0 are remapped to 1). */
typedef struct {
    uint64_t *keys;
    int64_t *vals;
    size_t cap, n; /* cap is a power of two */
} folio_u64map_t;

folio_status_t folio_u64map_init(folio_u64map_t *m, size_t expect);
void folio_u64map_free(folio_u64map_t *m);
/* Pointer to the value slot of key (inserted with 0 when absent), or NULL
 * when out of memory. Valid until the next insertion. */
int64_t *folio_u64map_slot(folio_u64map_t *m, uint64_t key);
/* Pointer to the value of key, or NULL when absent. */
int64_t *folio_u64map_find(const folio_u64map_t *m, uint64_t key);

static inline uint64_t folio_u64map_key(uint64_t k) { return k ? k : 1; }

#endif
