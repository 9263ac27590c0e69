/* One tokenizer shared by four threads (as the job layer may use it): each
 * thread encodes every golden text, in a different order so that they hit and
 * overwrite the shared piece cache at the same time, and every result must
 * still be the golden ids. */
#include <pthread.h>
#include <string.h>

#include "blurb/tokenizer.h"
#include "check.h"
#include "tokenizer_golden_read.h"

#define N_THREADS 4

static blurb_tokenizer *tok;
static golden_case *cases;
static size_t n_cases;

typedef struct { size_t start, exact; } job;

static void *worker(void *arg) {
    job *j = arg;
    blurb_err err = {0};
    for (size_t k = 0; k < n_cases; k++) {
        const golden_case *c = &cases[(j->start + k * 7) % n_cases];
        int32_t *ids = NULL;
        size_t n = 0;
        if (blurb_tokenizer_encode(tok, c->text, c->len, false, &ids, &n, &err) == 0 && n == c->n_ids &&
            memcmp(ids, c->ids, n * sizeof *ids) == 0)
            j->exact++;
        free(ids);
    }
    return NULL;
}

int main(void) {
    blurb_err err = {0};
    REQUIRE(blurb_tokenizer_load(NULL, 50257, &tok, &err) == 0);
    n_cases = golden_load(BLURB_TEST_DATA "/tokenizer_golden.jsonl", &cases);
    REQUIRE(n_cases == 1364); /* 1364 and 7 are coprime: each thread visits every case */
    pthread_t th[N_THREADS];
    job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (job){(size_t)i * 341, 0};
        REQUIRE(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        REQUIRE(pthread_join(th[i], NULL) == 0);
        CHECKF(jobs[i].exact == n_cases, "thread %d: %zu of %zu exact", i, jobs[i].exact, n_cases);
    }
    golden_free(cases, n_cases);
    blurb_tokenizer_free(tok);
    return check_finish("tokenizer_threads");
}
