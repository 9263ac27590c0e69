/* blurb info [--model DIR]: what a model directory holds, as blurb reads it. */
#include <stdio.h>
#include <string.h>

#include "blurb/model.h"
#include "cli.h"

static void info_usage(FILE *f) {
    fprintf(f, "usage: blurb info [--model DIR]\n\n"
               "Prints the model's config (config.json), parameter count, weight dtypes and bytes.\n"
               "Without --model: $BLURB_MODEL, else the default model next to the source tree or\n"
               "the install prefix.\n");
}

/* 17735936 -> "17,735,936" */
static const char *grouped(long long v, char *buf, size_t size) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t k = 0;
    if (v < 0 && k + 1 < size) buf[k++] = '-';
    for (int i = 0; i < n && k + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && k + 1 < size) buf[k++] = ',';
        if (k + 1 < size) buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static void count_dtype(const blurb_tensor *t, long long counts[3]) {
    if ((int)t->dtype >= 0 && (int)t->dtype < 3) counts[t->dtype]++;
}

int cli_info(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            info_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blurb info: --model needs a directory\n");
                return 2;
            }
            dir = argv[++i];
        } else {
            fprintf(stderr, "blurb info: unexpected argument '%s'\n\n", argv[i]);
            info_usage(stderr);
            return 2;
        }
    }
    blurb_err err = {0};
    char def[4096];
    if (!dir) {
        if (blurb_default_model_dir(def, sizeof def, &err) != 0) {
            fprintf(stderr, "blurb info: %s\n", err.msg);
            return 1;
        }
        dir = def;
    }
    blurb_model *m = NULL;
    if (blurb_model_load(dir, &m, &err) != 0) {
        fprintf(stderr, "blurb info: %s\n", err.msg);
        return 1;
    }
    const blurb_config *c = &m->cfg;
    long long counts[3] = {0, 0, 0};
    count_dtype(&m->wte, counts);
    count_dtype(&m->wpe, counts);
    count_dtype(&m->ln_f_w, counts);
    count_dtype(&m->ln_f_b, counts);
    if (!m->lm_head_tied) count_dtype(&m->lm_head, counts);
    for (int i = 0; i < c->n_layer; i++) {
        const blurb_layer *L = &m->layers[i];
        const blurb_tensor *ts[] = {&L->ln_1_w, &L->ln_1_b, &L->c_attn_w, &L->c_attn_b, &L->attn_c_proj_w,
                                    &L->attn_c_proj_b, &L->ln_2_w, &L->ln_2_b, &L->c_fc_w, &L->c_fc_b,
                                    &L->mlp_c_proj_w, &L->mlp_c_proj_b};
        for (size_t j = 0; j < sizeof ts / sizeof ts[0]; j++) count_dtype(ts[j], counts);
    }
    char dtypes[128] = "";
    size_t k = 0;
    for (int d = 0; d < 3; d++)
        if (counts[d] && k < sizeof dtypes)
            k += (size_t)snprintf(dtypes + k, sizeof dtypes - k, "%s%s (%lld tensors)", k ? ", " : "",
                                  blurb_dtype_name((blurb_dtype)d), counts[d]);
    long long params = (long long)blurb_model_n_params(m), bytes = (long long)blurb_model_n_bytes(m);
    char g1[48], g2[48];
    printf("model                            %s\n", m->dir);
    printf("n_layer                          %d\n", c->n_layer);
    printf("n_head                           %d\n", c->n_head);
    printf("n_embd                           %d\n", c->n_embd);
    printf("n_ctx                            %d\n", c->n_ctx);
    printf("n_inner                          %d\n", c->n_inner);
    printf("vocab_size                       %d\n", c->vocab_size);
    printf("layer_norm_epsilon               %g\n", (double)c->layer_norm_epsilon);
    printf("eos_token_id                     %d\n", c->eos_token_id);
    printf("scale_attn_weights               %s\n", c->scale_attn_weights ? "true" : "false");
    printf("scale_attn_by_inverse_layer_idx  %s\n", c->scale_attn_by_inverse_layer_idx ? "true" : "false");
    printf("lm_head                          %s\n", m->lm_head_tied ? "tied to wte" : "lm_head.weight");
    printf("parameters                       %s (%.1fM)\n", grouped(params, g1, sizeof g1), (double)params / 1e6);
    printf("dtypes                           %s\n", dtypes);
    printf("bytes                            %s (%.1f MiB)\n", grouped(bytes, g2, sizeof g2),
           (double)bytes / (1024.0 * 1024.0));
    blurb_model_free(m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "blurb info: cannot write the output\n");
        return 1;
    }
    return 0;
}
