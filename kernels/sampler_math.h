/* Scalar pieces of the sampler shared by the CUDA sampling kernel and, compiled
 * as plain C, by a CPU test that checks them against the reference sampler
 * (host/sampler.c): the Philox4x32-10 block, the uniform of a stream step and
 * the fixed-arithmetic exp (host/sampler_internal.h spells out the contract).
 * Every float operation is a single IEEE fp32 operation rounded to nearest:
 * on the device through __fadd_rn/__fmul_rn/__fsub_rn (never contracted into
 * an FMA), on the host through plain C in ISO mode (no contraction). */
#ifndef BLURB_KERNELS_SAMPLER_MATH_H
#define BLURB_KERNELS_SAMPLER_MATH_H

#include <stdint.h>

#if defined(__CUDACC__)
#define BKS_FN static __host__ __device__ __forceinline__
#else
#include <string.h>
#define BKS_FN static inline
#endif

#if defined(__CUDA_ARCH__)
#define BKS_ADD(a, b) __fadd_rn((a), (b))
#define BKS_SUB(a, b) __fsub_rn((a), (b))
#define BKS_MUL(a, b) __fmul_rn((a), (b))
#else
#define BKS_ADD(a, b) ((a) + (b))
#define BKS_SUB(a, b) ((a) - (b))
#define BKS_MUL(a, b) ((a) * (b))
#endif

BKS_FN uint32_t bks_f2u(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}
BKS_FN float bks_u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* Philox4x32-10 (Salmon et al. 2011, section 4.2) for counter {step, 0, 0, 0}
 * and key {key_lo, key_hi}; returns output word 0. */
BKS_FN uint32_t bks_philox_word0(uint32_t step, uint32_t key_lo, uint32_t key_hi) {
    uint32_t c0 = step, c1 = 0, c2 = 0, c3 = 0, k0 = key_lo, k1 = key_hi;
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key is bumped between rounds */
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    return c0;
}

/* u in [0, 1): the top 24 bits of word 0, times 2^-24 (exact). */
BKS_FN float bks_uniform(uint32_t step, uint32_t key_lo, uint32_t key_hi) {
    return (float)(bks_philox_word0(step, key_lo, key_hi) >> 8) * 0x1p-24f;
}

/* exp(x) for x <= 0 with the reference sampler's exact operation sequence:
 * Cody-Waite reduction by ln 2, degree-6 Taylor polynomial, scaling through
 * the exponent bits; 0 for x < -86, -inf and NaN; x > 0 read as 0. */
BKS_FN float bks_fixed_expf(float x) {
    const uint32_t xb = bks_f2u(x);
    const uint32_t ab = xb & 0x7fffffffu, neg = xb >> 31;
    const uint32_t under = (uint32_t)(ab > 0x42ac0000u) & (neg | (uint32_t)(ab > 0x7f800000u));
    const uint32_t m_under = 0u - under, m_neg = 0u - neg;
    const uint32_t cb = (xb & m_neg & ~m_under) | (0xc2ac0000u & m_under);
    const float xc = bks_u2f(cb);
    const float shifter = 0x1.8p23f;
    const float kf = BKS_SUB(BKS_ADD(BKS_MUL(xc, 0x1.715476p+0f), shifter), shifter);
    const float r = BKS_SUB(BKS_SUB(xc, BKS_MUL(kf, 0x1.63p-1f)), BKS_MUL(kf, -0x1.bd0106p-13f));
    float p = 0x1.6c16c2p-10f;                  /* 1/720 */
    p = BKS_ADD(BKS_MUL(p, r), 0x1.111112p-7f); /* 1/120 */
    p = BKS_ADD(BKS_MUL(p, r), 0x1.555556p-5f); /* 1/24 */
    p = BKS_ADD(BKS_MUL(p, r), 0x1.555556p-3f); /* 1/6 */
    p = BKS_ADD(BKS_MUL(p, r), 0.5f);
    p = BKS_ADD(BKS_MUL(p, r), 1.0f);
    p = BKS_ADD(BKS_MUL(p, r), 1.0f);
    const int32_t k = (int32_t)kf; /* in [-124, 0] */
    const float scale = bks_u2f((uint32_t)(k + 127) << 23);
    const float y = BKS_MUL(p, scale);
    return bks_u2f(bks_f2u(y) & ~m_under);
}

#endif
