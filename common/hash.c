/* common/hash.c — a seeded 64-bit hash (wyhash-style multiply-mix) used for
 * term hashing, the hashed embedding and content hashes.  Reads are done with
 * memcpy so unaligned input and any endianness-independent byte order work. */
#include "common.h"

#include <string.h>

static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static const uint64_t P0 = 0xa0761d6478bd642full, P1 = 0xe7037ed1a0b428dbull,
                      P2 = 0x8ebc6af09c88c6e3ull, P3 = 0x589965cc75374cc3ull;

uint64_t folio_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t a, b;
    seed ^= mum(seed ^ P0, P1);
    if (len <= 16) {
        if (len >= 4) {
            a = (rd32(p) << 32) | rd32(p + ((len >> 3) << 2));
            b = (rd32(p + len - 4) << 32) | rd32(p + len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = mum(rd64(p) ^ P1, rd64(p + 8) ^ seed);
                s1 = mum(rd64(p + 16) ^ P2, rd64(p + 24) ^ s1);
                s2 = mum(rd64(p + 32) ^ P3, rd64(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = mum(rd64(p) ^ P1, rd64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    a ^= P1;
    b ^= seed;
    __uint128_t r = (__uint128_t)a * b;
    a = (uint64_t)r;
    b = (uint64_t)(r >> 64);
    return mum(a ^ P0 ^ (uint64_t)len, b ^ P1);
}

void folio_hash128(const void *data, size_t len, uint8_t out[16])
{
    uint64_t h0 = folio_hash64(data, len, 0x666f6c696f2d3031ull); /* "folio-01" */
    uint64_t h1 = folio_hash64(data, len, 0x666f6c696f2d3032ull); /* "folio-02" */
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h0 >> (8 * i));
        out[8 + i] = (uint8_t)(h1 >> (8 * i));
    }
}

void folio_hash_hex(const uint8_t h[16], char buf[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        buf[2 * i] = hx[h[i] >> 4];
        buf[2 * i + 1] = hx[h[i] & 15];
    }
    buf[32] = 0;
}
