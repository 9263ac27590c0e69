/* The CUDA forward's host-side plan (host/cuda_plan.c) needs no GPU, so it is
 * checked here on random batches: sub-batches of at most tmax rows holding
 * every token once, in chunk order, at its slot's next positions; every row
 * covered by exactly one attention tile (one-token pieces by decode tiles,
 * longer pieces by prefill tiles of <= 16 consecutive queries); output rows
 * = every row (all_logits) or each chunk's last row, chunk by chunk; the
 * decode plan padded to a power of two on the spare slot. CUDA builds only. */
#include "check.h"
#ifdef BLURB_HAVE_CUDA
#include <stdbool.h>
#include <string.h>

#include "../host/cuda_internal.h"

static uint32_t rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void one_case(uint32_t *s, int tmax, bool all_logits) {
    enum { MAXC = 24, MAXT = 120, SLOTS = 40 };
    static int32_t toks[MAXC][MAXT];
    blurb_chunk ch[MAXC];
    int slot_len[SLOTS];
    for (int i = 0; i < SLOTS; i++) slot_len[i] = (int)(rnd(s) % 300);
    const int n = 1 + (int)(rnd(s) % MAXC);
    int perm[SLOTS];
    for (int i = 0; i < SLOTS; i++) perm[i] = i;
    for (int i = SLOTS - 1; i > 0; i--) {
        const int j = (int)(rnd(s) % (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int total = 0;
    for (int c = 0; c < n; c++) {
        const int len = rnd(s) % 3 == 0 ? 1 : 1 + (int)(rnd(s) % MAXT);
        for (int t = 0; t < len; t++) toks[c][t] = (int32_t)(rnd(s) % 50000);
        ch[c] = (blurb_chunk){perm[c], toks[c], len};
        total += len;
    }
    int32_t *hm = calloc((size_t)META_INTS(tmax), sizeof *hm);
    REQUIRE(hm != NULL);
    const int T = tmax;
    int ci = 0, toff = 0, seen = 0, rows_total = 0, n_sub = 0;
    int exp_c = 0, exp_t = 0; /* the token we expect next */
    int chunks_done = 0;
    while (ci < n) {
        cuda_plan p;
        cuda_plan_next(ch, n, slot_len, all_logits, tmax, &ci, &toff, hm, &p);
        n_sub++;
        CHECK(p.M >= 1 && p.M <= tmax);
        int covered[4096];
        REQUIRE(p.M <= 4096);
        memset(covered, 0, sizeof covered);
        int maxpos = 0;
        int first_c = exp_c;
        for (int r = 0; r < p.M; r++) {
            CHECK(hm[META_TOK(T) + r] == toks[exp_c][exp_t]);
            CHECK(hm[META_SLOT(T) + r] == ch[exp_c].slot);
            CHECK(hm[META_POS(T) + r] == slot_len[ch[exp_c].slot] + exp_t);
            if (hm[META_POS(T) + r] > maxpos) maxpos = hm[META_POS(T) + r];
            if (++exp_t == ch[exp_c].n_tokens) {
                exp_c++;
                exp_t = 0;
            }
            seen++;
        }
        CHECK(p.maxpos == maxpos);
        const int ndone = exp_c - first_c; /* chunks that end in this sub-batch */
        for (int k = 0; k < 2; k++) {
            const int nt = k ? p.n_pre : p.n_dec;
            const int32_t *tl = hm + (k ? META_PRE(T) : META_DEC(T));
            for (int i = 0; i < nt; i++) {
                const int tok = tl[4 * i], nq = tl[4 * i + 1], slot = tl[4 * i + 2], pos0 = tl[4 * i + 3];
                CHECK(nq >= 1 && nq <= (k ? BLURB_ATT_PREFILL_BQ : 1));
                CHECK(tok >= 0 && tok + nq <= p.M);
                for (int j = 0; j < nq && tok + j < p.M; j++) {
                    covered[tok + j]++;
                    CHECK(hm[META_SLOT(T) + tok + j] == slot);
                    CHECK(hm[META_POS(T) + tok + j] == pos0 + j);
                }
                /* a decode tile is a whole one-token piece: its neighbours belong to other slots */
                if (!k) {
                    CHECK(tok == 0 || hm[META_SLOT(T) + tok - 1] != slot);
                    CHECK(tok + 1 == p.M || hm[META_SLOT(T) + tok + 1] != slot);
                }
            }
        }
        for (int r = 0; r < p.M; r++) CHECKF(covered[r] == 1, "row %d covered %d times", r, covered[r]);
        if (all_logits) {
            CHECK(p.R == p.M);
            for (int r = 0; r < p.R; r++) CHECK(hm[META_ROWS(T) + r] == r);
        } else {
            CHECK(p.R == ndone);
            for (int r = 0; r < p.R; r++) {
                const int row = hm[META_ROWS(T) + r];
                const blurb_chunk *c = &ch[chunks_done + r];
                CHECK(row >= 0 && row < p.M);
                CHECK(hm[META_SLOT(T) + row] == c->slot);
                CHECK(hm[META_POS(T) + row] == slot_len[c->slot] + c->n_tokens - 1);
            }
        }
        chunks_done += ndone;
        rows_total += p.R;
    }
    CHECK(seen == total);
    CHECK(rows_total == (all_logits ? total : n));
    CHECK(n_sub == (total + tmax - 1) / tmax);
    free(hm);
}

static void decode_case(int n, int tmax) {
    int32_t toks[64];
    blurb_chunk ch[64];
    int slot_len[64];
    for (int i = 0; i < 64; i++) slot_len[i] = 3 * i;
    for (int i = 0; i < n; i++) {
        toks[i] = 100 + i;
        ch[i] = (blurb_chunk){63 - i, &toks[i], 1};
    }
    int32_t *hm = calloc((size_t)META_INTS(tmax), sizeof *hm);
    REQUIRE(hm != NULL);
    const int bi = cuda_plan_decode(ch, n, slot_len, 64, tmax, hm), Mb = 1 << bi;
    CHECK(Mb >= n && (bi == 0 || (1 << (bi - 1)) < n));
    for (int i = 0; i < Mb; i++) {
        const bool real = i < n;
        CHECK(hm[META_TOK(tmax) + i] == (real ? 100 + i : 0));
        CHECK(hm[META_SLOT(tmax) + i] == (real ? 63 - i : 64));
        CHECK(hm[META_POS(tmax) + i] == (real ? 3 * (63 - i) : 0));
        const int32_t *t = hm + META_DEC(tmax) + 4 * i;
        CHECK(t[0] == i && t[1] == 1 && t[2] == hm[META_SLOT(tmax) + i] && t[3] == hm[META_POS(tmax) + i]);
    }
    free(hm);
}

int main(void) {
    uint32_t s = 5u;
    const int tmaxes[4] = {1, 7, 64, 2048};
    for (int k = 0; k < 4; k++)
        for (int it = 0; it < 300; it++) one_case(&s, tmaxes[k], it & 1);
    for (int n = 1; n <= 64; n++) decode_case(n, 64);
    return check_finish("cuda_plan");
}
#else
int main(void) { SKIP("built without CUDA (the plan is part of the CUDA backend)"); }
#endif
