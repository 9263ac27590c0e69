/* Test helpers: write safetensors files, config.json and whole model
 * directories into a temporary directory, and remove it afterwards. Tests make
 * every file they load themselves, so nothing depends on files on disk other
 * than weights/default and tests/data. */
#ifndef BLURB_TESTS_ST_WRITE_H
#define BLURB_TESTS_ST_WRITE_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct stw_tensor {
    char name[160];
    const char *dtype;   /* safetensors spelling */
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} stw_tensor;

static inline void stw_die(const char *what, const char *path) {
    fprintf(stderr, "test setup failed: %s %s\n", what, path);
    exit(1);
}

/* Writes raw bytes: exactly what a test wants on disk. */
static inline void stw_write_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f) stw_die("cannot create", path);
    if ((na && fwrite(a, 1, na, f) != na) || (nb && fwrite(b, 1, nb, f) != nb)) stw_die("cannot write", path);
    if (fclose(f) != 0) stw_die("cannot close", path);
}

static inline void stw_write_text(const char *path, const char *text) {
    stw_write_bytes(path, text, strlen(text), NULL, 0);
}

/* A file with the given 8-byte length field, header bytes and data bytes. */
static inline void stw_write_raw(const char *path, uint64_t len_field, const char *hdr, size_t hdr_len,
                                 const void *data, size_t data_len) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(len_field >> (8 * i));
    size_t total = 8 + hdr_len;
    uint8_t *buf = malloc(total);
    if (!buf) stw_die("out of memory", path);
    memcpy(buf, le, 8);
    memcpy(buf + 8, hdr, hdr_len);
    stw_write_bytes(path, buf, total, data, data_len);
    free(buf);
}

/* Appends to a growing heap string. */
typedef struct stw_str {
    char *s;
    size_t n, cap;
} stw_str;

static inline void stw_addf(stw_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void stw_addf(stw_str *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) stw_die("vsnprintf", fmt);
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 256) + (size_t)k;
        char *ns = realloc(b->s, ncap);
        if (!ns) stw_die("out of memory", "string");
        b->s = ns;
        b->cap = ncap;
    }
}

/* The JSON header of a well-formed file (tensors laid out in the given order),
 * padded with spaces so the data starts 8-byte aligned, as HF's writer does.
 * meta: NULL = no __metadata__, else its JSON text (e.g. "{}"). */
static inline char *stw_header(const stw_tensor *ts, int n, const char *meta, size_t *len) {
    stw_str b = {0};
    stw_addf(&b, "{");
    if (meta) stw_addf(&b, "\"__metadata__\":%s%s", meta, n ? "," : "");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        stw_addf(&b, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", ts[i].name, ts[i].dtype);
        for (int d = 0; d < ts[i].ndim; d++) stw_addf(&b, "%s%lld", d ? "," : "", (long long)ts[i].shape[d]);
        stw_addf(&b, "],\"data_offsets\":[%zu,%zu]}", off, off + ts[i].nbytes);
        off += ts[i].nbytes;
    }
    stw_addf(&b, "}");
    while ((8 + b.n) % 8 != 0) stw_addf(&b, " ");
    *len = b.n;
    return b.s;
}

static inline void stw_write_file(const char *path, const stw_tensor *ts, int n, const char *meta) {
    size_t hl;
    char *hdr = stw_header(ts, n, meta, &hl);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    FILE *f = fopen(path, "wb");
    if (!f) stw_die("cannot create", path);
    if (fwrite(le, 1, 8, f) != 8 || fwrite(hdr, 1, hl, f) != hl) stw_die("cannot write", path);
    for (int i = 0; i < n; i++)
        if (ts[i].nbytes && fwrite(ts[i].data, 1, ts[i].nbytes, f) != ts[i].nbytes) stw_die("cannot write", path);
    if (fclose(f) != 0) stw_die("cannot close", path);
    free(hdr);
}

static inline char *stw_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) stw_die("out of memory", name);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static inline char *stw_mkdtemp(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    char *t = stw_path(base, "blurb-test-XXXXXX");
    if (!mkdtemp(t)) stw_die("mkdtemp failed in", base);
    return t;
}

static inline char *stw_subdir(const char *dir, const char *name) {
    char *p = stw_path(dir, name);
    if (mkdir(p, 0700) != 0) stw_die("mkdir", p);
    return p;
}

/* Removes a directory tree made by the test (no symlinks are followed: lstat). */
static inline void stw_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char *p = stw_path(path, e->d_name);
                stw_rmtree(p);
                free(p);
            }
            closedir(d);
        }
        if (rmdir(path) != 0) fprintf(stderr, "warning: cannot remove %s\n", path);
    } else if (unlink(path) != 0) {
        fprintf(stderr, "warning: cannot remove %s\n", path);
    }
}

#endif
