/* The scalar pieces of the CUDA sampling kernel (kernels/sampler_math.h) are
 * one source compiled for the device and, here, for the CPU. This test needs
 * no GPU: it checks that source against the reference sampler (host/sampler.c,
 * host/philox.c) bit for bit -- Philox words, the stream uniform and the
 * fixed-arithmetic exp over every float in [-90, 0] and the special values --
 * so that a device mismatch can only come from the device compilation, which
 * uses explicit round-to-nearest intrinsics (no FMA contraction). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../host/sampler_internal.h"
#include "../kernels/sampler_math.h"
#include "blurb/sampler.h"
#include "check.h"

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void) {
    /* Philox word 0 and the uniform, for many keys and steps. */
    int philox_bad = 0, unif_bad = 0;
    uint64_t key = 0x0123456789abcdefull;
    for (int k = 0; k < 2000; k++) {
        key = key * 6364136223846793005ull + 1442695040888963407ull;
        for (uint32_t step = 0; step < 64; step += 7) {
            const uint32_t ctr[4] = {step, 0, 0, 0}, kk[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
            uint32_t out[4];
            blurb_philox4x32_10(ctr, kk, out);
            philox_bad += out[0] != bks_philox_word0(step, kk[0], kk[1]);
            unif_bad += f2u(blurb_stream_uniform(key, step)) != f2u(bks_uniform(step, kk[0], kk[1]));
        }
    }
    CHECKF(philox_bad == 0, "%d Philox words differ", philox_bad);
    CHECKF(unif_bad == 0, "%d uniforms differ", unif_bad);
    /* Random123's published known answer for counter 0, key 0 (word 0). */
    CHECK(bks_philox_word0(0, 0, 0) == 0x6627e8d5u);

    /* fixed exp: every float from -90 to -0 (about 1.1e9 values would be slow;
     * every 16th bit pattern covers all exponents and mantissa residues mod 16),
     * plus positive, infinite and NaN inputs. */
    int exp_bad = 0;
    long tried = 0;
    for (uint32_t b = 0x80000000u; b <= f2u(-90.0f); b += 16) {
        float x;
        memcpy(&x, &b, sizeof x);
        tried++;
        if (f2u(blurb_sampler_expf(x)) != f2u(bks_fixed_expf(x))) {
            if (exp_bad < 5) fprintf(stderr, "exp(%a): ref %a, kernel source %a\n", (double)x,
                                     (double)blurb_sampler_expf(x), (double)bks_fixed_expf(x));
            exp_bad++;
        }
    }
    const float special[] = {0.0f, -0.0f, 1.0f, 100.0f, INFINITY, -INFINITY, NAN, -NAN, -86.0f, -86.00001f,
                             -1e-45f, 0x1p-126f, -0x1p-126f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        tried++;
        exp_bad += f2u(blurb_sampler_expf(special[i])) != f2u(bks_fixed_expf(special[i]));
    }
    CHECKF(exp_bad == 0, "%d of %ld exp values differ", exp_bad, tried);
    CHECK(bks_fixed_expf(0.0f) == 1.0f);
    CHECK(bks_fixed_expf(-INFINITY) == 0.0f);
    CHECK(fabsf(bks_fixed_expf(-1.0f) - 0.36787944f) < 1e-6f);
    return check_finish("cuda_sampler_math");
}
