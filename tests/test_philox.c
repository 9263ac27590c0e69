/* Philox4x32-10 against the published known-answer vectors, and the stream key
 * and uniform against values computed independently (a Python transcription of
 * the documented FNV-1a + splitmix64 and Philox definitions, run once by hand). */
#include <stdint.h>
#include <string.h>

#include "blurb/sampler.h"
#include "check.h"

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t out[4];
    blurb_philox4x32_10(ctr, key, out);
    for (int i = 0; i < 4; i++)
        CHECKF(out[i] == want[i], "word %d: got 0x%08x want 0x%08x", i, out[i], want[i]);
}

int main(void) {
    /* Random123 examples/kat_vectors, the three "philox4x32 10" lines (Salmon et al. 2011). */
    {
        const uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0};
        const uint32_t w[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
        kat(c, k, w);
    }
    {
        const uint32_t c[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
        const uint32_t k[2] = {0xffffffff, 0xffffffff};
        const uint32_t w[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
        kat(c, k, w);
    }
    {
        const uint32_t c[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
        const uint32_t k[2] = {0xa4093822, 0x299f31d0};
        const uint32_t w[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
        kat(c, k, w);
    }

    /* Stream keys: FNV-1a 64 over seed (8 bytes LE), sample index (4 bytes LE),
     * id bytes, then the splitmix64 finalizer. */
    CHECK(blurb_stream_key(0, "", 0, 0) == 0x0cdc9f672e9fa9ceull);
    CHECK(blurb_stream_key(0, NULL, 0, 0) == 0x0cdc9f672e9fa9ceull);
    CHECK(blurb_stream_key(0, "1", 1, 0) == 0x2c87c6a80d677738ull);
    CHECK(blurb_stream_key(20240601, "SKU-123", 7, 2) == 0x989316dcbf448c01ull);
    CHECK(blurb_stream_key(UINT64_MAX, "\xc3\xa9t\xc3\xa9", 5, 7) == 0xa603e3c9d37f697eull);
    /* id_len, not NUL termination, delimits the id. */
    CHECK(blurb_stream_key(20240601, "SKU-123xyz", 7, 2) == 0x989316dcbf448c01ull);
    /* Each component changes the key. */
    uint64_t base = blurb_stream_key(20240601, "SKU-123", 7, 2);
    CHECK(blurb_stream_key(20240602, "SKU-123", 7, 2) != base);
    CHECK(blurb_stream_key(20240601, "SKU-124", 7, 2) != base);
    CHECK(blurb_stream_key(20240601, "SKU-123", 7, 3) != base);

    /* Uniforms: top 24 bits of word 0 for counter {step, 0, 0, 0}, key {lo, hi}. */
    CHECK(blurb_stream_uniform(base, 0) == 1726034.0f * 0x1p-24f);
    CHECK(blurb_stream_uniform(base, 1) == 5766150.0f * 0x1p-24f);
    CHECK(blurb_stream_uniform(base, 12345) == 12152630.0f * 0x1p-24f);
    {
        const uint32_t c[4] = {7, 0, 0, 0};
        const uint32_t k[2] = {(uint32_t)base, (uint32_t)(base >> 32)};
        uint32_t out[4];
        blurb_philox4x32_10(c, k, out);
        CHECK(blurb_stream_uniform(base, 7) == (float)(out[0] >> 8) * 0x1p-24f);
    }
    /* Range over many steps: [0, 1), and the mean near 1/2. */
    double sum = 0;
    int in_range = 1;
    for (uint32_t s = 0; s < 100000; s++) {
        float u = blurb_stream_uniform(base, s);
        if (!(u >= 0.0f && u < 1.0f)) in_range = 0;
        sum += u;
    }
    CHECK(in_range);
    /* sd of the mean of 1e5 uniforms is 0.0009; 0.005 is > 5 sd. */
    CHECKF(sum / 100000 > 0.495 && sum / 100000 < 0.505, "mean %f", sum / 100000);
    return check_finish("philox");
}
