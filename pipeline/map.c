/* pipeline/map.c — open-addressing (linear probing) u64 -> i64 table. */
#include "pipeline_internal.h"

#include <stdlib.h>
#include <string.h>

static inline size_t slot_of(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

folio_status_t folio_u64map_init(folio_u64map_t *m, size_t expect)
{
    size_t cap = 64;
    while (cap < expect * 2) cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        folio_u64map_free(m);
        return FOLIO_ERR_NOMEM;
    }
    return FOLIO_OK;
}

void folio_u64map_free(folio_u64map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static folio_status_t grow(folio_u64map_t *m)
{
    folio_u64map_t nm;
    FOLIO_TRY(folio_u64map_init(&nm, m->cap));
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = slot_of(m->keys[i], nm.cap - 1);
        while (nm.keys[j]) j = (j + 1) & (nm.cap - 1);
        nm.keys[j] = m->keys[i];
        nm.vals[j] = m->vals[i];
    }
    nm.n = m->n;
    folio_u64map_free(m);
    *m = nm;
    return FOLIO_OK;
}

int64_t *folio_u64map_slot(folio_u64map_t *m, uint64_t key)
{
    if ((m->n + 1) * 2 > m->cap && grow(m) != FOLIO_OK) return NULL;
    size_t mask = m->cap - 1, j = slot_of(key, mask);
    while (m->keys[j] && m->keys[j] != key) j = (j + 1) & mask;
    if (!m->keys[j]) {
        m->keys[j] = key;
        m->vals[j] = 0;
        m->n++;
    }
    return &m->vals[j];
}

int64_t *folio_u64map_find(const folio_u64map_t *m, uint64_t key)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1, j = slot_of(key, mask);
    while (m->keys[j]) {
        if (m->keys[j] == key) return &m->vals[j];
        j = (j + 1) & mask;
    }
    return NULL;
}
