/* The roofline counts of include/blurb/roofline.h on a tiny config, against
 * numbers worked out by hand from the formulas in that header (each expected
 * value below shows its arithmetic), plus the argument checks and the
 * no-CUDA stubs of include/blurb/cuda_peaks.h. */
#include <string.h>

#include "blurb/cuda_peaks.h"
#include "blurb/roofline.h"
#include "check.h"

/* n_layer 2, n_embd 8, n_inner 32, vocab 10, n_ctx 16. */
static blurb_config tiny(void) {
    blurb_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.n_inner = 32;
    c.vocab_size = 10;
    c.n_ctx = 16;
    c.layer_norm_epsilon = 1e-5f;
    c.eos_token_id = 9;
    return c;
}

#define CHECK_EQ(got, want) CHECKF((got) == (want), "%s = %.17g, want %.17g", #got, (double)(got), (double)(want))

int main(void) {
    blurb_config c = tiny();
    blurb_err err = {0};

    /* Prefill: 3 sequences x 4 new tokens, bf16 (b = 2). T = 12, R = 3. */
    {
        blurb_work w;
        memset(&w, 0, sizeof w);
        REQUIRE(blurb_work_forward(&c, 2, 3, 0, 4, false, &w, &err) == 0);
        /* 2*T*L*(4E^2 + 2EI) + 2*R*E*V = 2*12*2*(256 + 512) + 2*3*8*10 = 36864 + 480 */
        CHECK_EQ(w.flops[BLURB_PHASE_GEMM], 37344.0);
        /* L*(4E^2+2EI+5E+I)*b = 2*840*2 = 3360; V*E*b = 160; T*L*(8E+2I)*b = 12*2*128*2 = 6144;
         * R*E*b = 48; R*V*4 = 120 */
        CHECK_EQ(w.bytes[BLURB_PHASE_GEMM], 3360.0 + 160 + 6144 + 48 + 120);
        /* keys per sequence: 1+2+3+4 = 10; 4*E*keys*L*n_seq = 4*8*10*2*3 */
        CHECK_EQ(w.flops[BLURB_PHASE_ATTENTION], 1920.0);
        /* KV: L*n_seq*2*(0+4)*E*b = 768; q and out: L*2*T*E*b = 768 */
        CHECK_EQ(w.bytes[BLURB_PHASE_ATTENTION], 1536.0);
        /* T*L*(16E + 8I + 2E) = 24*400 = 9600; embedding T*E = 96; ln_f 8*R*E = 192 */
        CHECK_EQ(w.flops[BLURB_PHASE_OTHER], 9888.0);
        /* T*L*(10E+2I)*b = 24*144*2 = 6912; L*4E*b = 128; T*3E*b = 576; 2RE*b = 96; 2E*b = 32 */
        CHECK_EQ(w.bytes[BLURB_PHASE_OTHER], 7744.0);
        CHECK_EQ(blurb_work_total_flops(&w), 37344.0 + 1920 + 9888);
        CHECK_EQ(blurb_work_total_bytes(&w), 9832.0 + 1536 + 7744);

        /* 1000 B/s, 2000 FLOP/s: GEMM compute-bound 37344/2000 = 18.672 (memory 9.832);
         * attention memory-bound 1.536 (compute 0.96); rest memory-bound 7.744 (4.944). */
        double s = blurb_roofline_seconds(&w, 1000.0, 2000.0);
        CHECKF(s > 27.952 - 1e-9 && s < 27.952 + 1e-9, "roofline %.17g, want 27.952", s);
        /* The bound is per phase, not of the totals: max(19112/1000, 49152/2000) = 24.576 is less. */
        CHECK(s > 24.576 + 1.0);
        CHECK(blurb_roofline_seconds(&w, 0.0, 2000.0) < 0.0);
        CHECK(blurb_roofline_seconds(&w, 1000.0, -1.0) < 0.0);
    }

    /* Decode step: 3 sequences holding 4 tokens append 1, fp32 (b = 4). T = R = 3. */
    {
        blurb_work w;
        memset(&w, 0, sizeof w);
        REQUIRE(blurb_work_forward(&c, 4, 3, 4, 1, false, &w, &err) == 0);
        /* 2*3*2*768 + 480; also 2 * (matrix parameters L*(4E^2+2EI) + V*E = 1616) * tokens 3 */
        CHECK_EQ(w.flops[BLURB_PHASE_GEMM], 9696.0);
        CHECK_EQ(w.flops[BLURB_PHASE_GEMM], 2.0 * 1616 * 3);
        /* 2*840*4 = 6720; 320; 3*2*128*4 = 3072; 3*8*4 = 96; 3*10*4 = 120 */
        CHECK_EQ(w.bytes[BLURB_PHASE_GEMM], 10328.0);
        /* each query attends 5 keys: 4*8*5*2*3 */
        CHECK_EQ(w.flops[BLURB_PHASE_ATTENTION], 960.0);
        /* KV read 2*3*2*5*8*4 = 1920; q and out 2*2*3*8*4 = 384 */
        CHECK_EQ(w.bytes[BLURB_PHASE_ATTENTION], 2304.0);
        /* 3*2*400 + 3*8 + 8*3*8 */
        CHECK_EQ(w.flops[BLURB_PHASE_OTHER], 2616.0);
        /* 3*2*144*4 = 3456; 2*4*8*4 = 256; 3*3*8*4 = 288; 2*3*8*4 = 192; 2*8*4 = 64 */
        CHECK_EQ(w.bytes[BLURB_PHASE_OTHER], 4256.0);

        /* Sampling 3 rows of 10 fp32 logits adds one read and 4 FLOPs per logit. */
        REQUIRE(blurb_work_sample(&c, 3, &w, &err) == 0);
        CHECK_EQ(w.bytes[BLURB_PHASE_OTHER], 4256.0 + 120);
        CHECK_EQ(w.flops[BLURB_PHASE_OTHER], 2616.0 + 120);

        /* Adding accumulates; a second identical call doubles every figure. */
        blurb_work twice = w;
        blurb_work_add(&twice, &w);
        for (int p = 0; p < BLURB_N_PHASES; p++) {
            CHECK_EQ(twice.bytes[p], 2.0 * w.bytes[p]);
            CHECK_EQ(twice.flops[p], 2.0 * w.flops[p]);
        }
    }

    /* all_logits: every token gets a logits row. 2 sequences holding 1 token append 3: T = R = 6. */
    {
        blurb_work w;
        memset(&w, 0, sizeof w);
        REQUIRE(blurb_work_forward(&c, 2, 2, 1, 3, true, &w, &err) == 0);
        /* 2*6*2*768 + 2*6*8*10 */
        CHECK_EQ(w.flops[BLURB_PHASE_GEMM], 18432.0 + 960);
        /* keys: 2 + 3 + 4 = 9 (= 3*1 + 3*4/2); 4*8*9*2*2 */
        CHECK_EQ(w.flops[BLURB_PHASE_ATTENTION], 1152.0);
    }

    /* Bad arguments fail with BLURB_E_INVALID and leave the work untouched. */
    {
        blurb_work w;
        memset(&w, 0, sizeof w);
        CHECK(blurb_work_forward(&c, 2, 1, 10, 7, false, &w, &err) == BLURB_E_INVALID); /* 17 > n_ctx */
        CHECK(strstr(err.msg, "n_ctx 16") != NULL);
        CHECK(blurb_work_forward(&c, 2, 0, 0, 1, false, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(&c, 2, 1, 0, 0, false, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(&c, 2, 1, -1, 1, false, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(&c, 0, 1, 0, 1, false, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(NULL, 2, 1, 0, 1, false, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(&c, 2, 1, 0, 1, false, NULL, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_sample(&c, -1, &w, &err) == BLURB_E_INVALID);
        CHECK(blurb_work_forward(&c, 2, 1, 15, 1, false, &w, &err) == 0); /* exactly n_ctx is fine */
        blurb_work one;
        memset(&one, 0, sizeof one);
        REQUIRE(blurb_work_forward(&c, 2, 1, 15, 1, false, &one, &err) == 0);
        for (int p = 0; p < BLURB_N_PHASES; p++) {
            CHECK_EQ(w.bytes[p], one.bytes[p]);
            CHECK_EQ(w.flops[p], one.flops[p]);
        }
    }

#ifndef BLURB_HAVE_CUDA
    /* Without CUDA the device functions say so and zero their outputs. */
    {
        double bw = 1.0, fl = 1.0;
        int64_t used = 1;
        blurb_cuda_device_info info;
        CHECK(blurb_cuda_measure_peaks(0, &bw, &fl, &err) == BLURB_E_UNSUPPORTED);
        CHECK(bw == 0.0 && fl == 0.0);
        CHECK(strstr(err.msg, "without CUDA") != NULL);
        CHECK(blurb_cuda_device_query(0, &info, &err) == BLURB_E_UNSUPPORTED);
        CHECK(blurb_cuda_mem_used(0, &used, &err) == BLURB_E_UNSUPPORTED);
        CHECK(used == 0);
    }
#endif
    return check_finish("roofline");
}
