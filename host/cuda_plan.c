/* Host-side planning of a CUDA forward: which rows, positions, attention tiles
 * and output rows each sub-batch holds. Pure C (no CUDA calls), so that
 * tests/test_cuda_plan.c checks it on any machine. */
#include "cuda_internal.h"

static void put_tile(int32_t *at, int tok, int nq, int slot, int pos0) {
    at[0] = tok;
    at[1] = nq;
    at[2] = slot;
    at[3] = pos0;
}

void cuda_plan_next(const blurb_chunk *chunks, int n_chunks, const int *slot_len, bool all_logits, int tmax,
                    int *ci, int *toff, int32_t *hm, cuda_plan *p) {
    const int T = tmax, BQ = BLURB_ATT_PREFILL_BQ;
    p->M = p->n_dec = p->n_pre = p->R = p->maxpos = 0;
    while (*ci < n_chunks && p->M < T) {
        const blurb_chunk *c = &chunks[*ci];
        const int left = c->n_tokens - *toff;
        const int take = left < T - p->M ? left : T - p->M;
        const int p0 = slot_len[c->slot] + *toff;
        const int M = p->M;
        for (int t = 0; t < take; t++) {
            hm[META_TOK(T) + M + t] = c->tokens[*toff + t];
            hm[META_SLOT(T) + M + t] = c->slot;
            hm[META_POS(T) + M + t] = p0 + t;
        }
        /* one-token pieces go to the decode kernel, longer ones to the prefill
         * kernel in tiles of BQ queries; both give a query the same bits */
        if (take == 1) {
            put_tile(hm + META_DEC(T) + 4 * p->n_dec++, M, 1, c->slot, p0);
        } else {
            for (int q0 = 0; q0 < take; q0 += BQ)
                put_tile(hm + META_PRE(T) + 4 * p->n_pre++, M + q0, take - q0 < BQ ? take - q0 : BQ, c->slot, p0 + q0);
        }
        if (all_logits) {
            for (int t = 0; t < take; t++) hm[META_ROWS(T) + p->R++] = M + t;
        } else if (*toff + take == c->n_tokens) {
            hm[META_ROWS(T) + p->R++] = M + take - 1; /* the chunk's last position */
        }
        if (p0 + take - 1 > p->maxpos) p->maxpos = p0 + take - 1;
        p->M += take;
        *toff += take;
        if (*toff == c->n_tokens) {
            (*ci)++;
            *toff = 0;
        }
    }
}

int cuda_plan_decode(const blurb_chunk *chunks, int n, const int *slot_len, int spare_slot, int tmax, int32_t *hm) {
    int bi = 0;
    while ((1 << bi) < n) bi++;
    const int Mb = 1 << bi, T = tmax;
    for (int i = 0; i < Mb; i++) {
        const bool real = i < n;
        const int slot = real ? chunks[i].slot : spare_slot; /* padding: the spare slot, position 0 */
        const int pos = real ? slot_len[slot] : 0;
        hm[META_TOK(T) + i] = real ? chunks[i].tokens[0] : 0;
        hm[META_SLOT(T) + i] = slot;
        hm[META_POS(T) + i] = pos;
        put_tile(hm + META_DEC(T) + 4 * i, i, 1, slot, pos);
    }
    return bi;
}
