#include "blurb/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *env_get(const char *const *envp, const char *name) {
    if (!envp) return getenv(name);
    size_t n = strlen(name);
    for (const char *const *e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

/* The whole of s as a decimal long (digits and an optional '-'; no spaces). */
static bool parse_long(const char *s, long *out) {
    if (!s || !*s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

int blurb_shard_parse(const char *text, blurb_shard *s, blurb_err *err) {
    const char *slash = text ? strchr(text, '/') : NULL;
    char a[32];
    long i, n;
    if (!slash || (size_t)(slash - text) >= sizeof a) goto bad;
    memcpy(a, text, (size_t)(slash - text));
    a[slash - text] = '\0';
    if (a[0] == '+' || a[0] == '-' || slash[1] == '+' || slash[1] == '-') goto bad;
    if (!parse_long(a, &i) || !parse_long(slash + 1, &n) || n < 1 || i < 0 || i >= n) goto bad;
    s->index = i;
    s->count = n;
    return 0;
bad:
    return blurb_seterr(err, BLURB_E_INVALID, "shard '%s': expected I/N with 0 <= I < N", text ? text : "(null)");
}

/* A variable that must be a number when present. 1 = found, 0 = absent. */
static int env_long(const char *const *envp, const char *name, long *out, blurb_err *err) {
    const char *v = env_get(envp, name);
    if (!v) return 0;
    if (!parse_long(v, out))
        return blurb_seterr(err, BLURB_E_INVALID, "environment variable %s='%s' is not an integer", name, v);
    return 1;
}

static int rank_size(const char *const *envp, const char *rank_name, const char *size_name, const char *source,
                     blurb_shard *s, blurb_err *err) {
    long r, n;
    int hr = env_long(envp, rank_name, &r, err);
    if (hr < 0) return hr;
    int hn = env_long(envp, size_name, &n, err);
    if (hn < 0) return hn;
    if (!hr || !hn) return 0;
    if (n < 1 || r < 0 || r >= n)
        return blurb_seterr(err, BLURB_E_INVALID, "%s=%ld and %s=%ld do not give a shard (need 0 <= rank < size)",
                            rank_name, r, size_name, n);
    s->index = r;
    s->count = n;
    s->source = source;
    return 1;
}

int blurb_shard_detect(const char *const *envp, const char *explicit_shard, blurb_shard *s, blurb_err *err) {
    if (!envp) envp = (const char *const *)environ;
    s->index = 0;
    s->count = 1;
    s->local_rank = 0;
    s->source = "none";

    long lr;
    int h = env_long(envp, "OMPI_COMM_WORLD_LOCAL_RANK", &lr, err);
    if (h < 0) return h;
    if (!h) h = env_long(envp, "SLURM_LOCALID", &lr, err);
    if (h < 0) return h;
    if (h) {
        if (lr < 0) return blurb_seterr(err, BLURB_E_INVALID, "negative local rank %ld in the environment", lr);
        s->local_rank = lr;
    }

    if (explicit_shard) {
        int rc = blurb_shard_parse(explicit_shard, s, err);
        if (rc) return rc;
        s->source = "--shard";
        return 0;
    }

    long id, count, min = 0, step = 1;
    int hid = env_long(envp, "SLURM_ARRAY_TASK_ID", &id, err);
    if (hid < 0) return hid;
    int hc = env_long(envp, "SLURM_ARRAY_TASK_COUNT", &count, err);
    if (hc < 0) return hc;
    if (hid && hc) {
        if (env_long(envp, "SLURM_ARRAY_TASK_MIN", &min, err) < 0) return err->code;
        if (env_long(envp, "SLURM_ARRAY_TASK_STEP", &step, err) < 0) return err->code;
        if (step < 1 || count < 1 || id < min || (id - min) % step != 0 || (id - min) / step >= count)
            return blurb_seterr(err, BLURB_E_INVALID,
                                "Slurm array variables give no shard: SLURM_ARRAY_TASK_ID=%ld _MIN=%ld _STEP=%ld "
                                "_COUNT=%ld (need ID = MIN + k*STEP with 0 <= k < COUNT)",
                                id, min, step, count);
        s->index = (id - min) / step;
        s->count = count;
        s->source = "slurm array";
        return 0;
    }
    int rc = rank_size(envp, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "open mpi", s, err);
    if (rc) return rc < 0 ? rc : 0;
    rc = rank_size(envp, "PMI_RANK", "PMI_SIZE", "pmi", s, err);
    if (rc) return rc < 0 ? rc : 0;
    return 0;
}

int blurb_shard_device(long local_rank, int n_gpus) {
    if (n_gpus < 1 || local_rank < 0) return 0;
    return (int)(local_rank % n_gpus);
}

int blurb_shard_gpu_count(void) {
#ifdef BLURB_HAVE_CUDA
    return blurb_cuda_device_count();
#else
    return 0;
#endif
}

int blurb_shard_output_path(const char *path, const blurb_shard *s, char **out, blurb_err *err) {
    char tag[64];
    snprintf(tag, sizeof tag, "%ld-of-%ld", s->index, s->count);
    static const char key[] = "{shard}";
    size_t klen = sizeof key - 1, tlen = strlen(tag), plen = strlen(path), n_keys = 0;
    for (const char *p = strstr(path, key); p; p = strstr(p + klen, key)) n_keys++;
    size_t size = n_keys ? plen - n_keys * klen + n_keys * tlen + 1 : plen + (s->count > 1 ? 1 + tlen : 0) + 1;
    char *r = malloc(size);
    if (!r) return blurb_seterr(err, BLURB_E_NOMEM, "out of memory");
    if (n_keys) {
        char *w = r;
        const char *p = path;
        for (const char *k = strstr(p, key); k; k = strstr(p, key)) {
            memcpy(w, p, (size_t)(k - p));
            w += k - p;
            memcpy(w, tag, tlen);
            w += tlen;
            p = k + klen;
        }
        memcpy(w, p, strlen(p) + 1);
    } else if (s->count > 1) {
        snprintf(r, size, "%s.%s", path, tag);
    } else {
        memcpy(r, path, plen + 1);
    }
    *out = r;
    return 0;
}

void blurb_shard_filter(blurb_catalog *cat, const blurb_shard *s) {
    if (s->count <= 1) return;
    size_t w = 0;
    for (size_t i = 0; i < cat->n_lines; i++)
        if (cat->lines[i].line_no % s->count == s->index) cat->lines[w++] = cat->lines[i];
    cat->n_lines = w;
}
