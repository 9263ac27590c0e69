/* Counter-based randomness for sampling: Philox4x32-10 (Salmon, Moraes, Dror,
 * Shaw 2011, "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11, section 4.2)
 * and the per-sample stream key. A stateless generator is what lets every
 * (seed, record, sample) own its stream, so draws never depend on batching. */
#include "blurb/sampler.h"

#include <stdint.h>

/* Round multipliers and Weyl key increments from the paper (table 2 / section 4.2). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void blurb_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key is bumped between rounds, not before the first */
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static uint64_t fnv1a64_bytes(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull; /* FNV-1a 64-bit prime */
    }
    return h;
}

static uint64_t fnv1a64_le(uint64_t h, uint64_t v, int n_bytes) {
    unsigned char b[8];
    for (int i = 0; i < n_bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
    return fnv1a64_bytes(h, b, (size_t)n_bytes);
}

uint64_t blurb_stream_key(uint64_t seed, const char *id, size_t id_len, uint32_t sample_index) {
    /* Fixed-width fields first and the variable-length id last, so that the byte
     * string (and hence the key, up to 64-bit collisions) is unique per triple. */
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64-bit offset basis */
    h = fnv1a64_le(h, seed, 8);
    h = fnv1a64_le(h, sample_index, 4);
    if (id && id_len) h = fnv1a64_bytes(h, (const unsigned char *)id, id_len);
    /* FNV-1a alone avalanches poorly in its high bits; the splitmix64 finalizer
     * (Steele, Lea, Flood 2014, "Fast Splittable Pseudorandom Number Generators")
     * spreads every input bit over both key words. */
    uint64_t z = h + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float blurb_stream_uniform(uint64_t key, uint32_t step) {
    const uint32_t ctr[4] = {step, 0, 0, 0};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    uint32_t out[4];
    blurb_philox4x32_10(ctr, k, out);
    /* 24 bits fill a float mantissa exactly, so u is exact and strictly below 1. */
    return (float)(out[0] >> 8) * 0x1p-24f;
}
