/* safetensors reader; see include/blurb/safetensors.h for the format and the
 * rules checked. Everything here is about the file format: GPT-2 lives in model.c. */
#include "blurb/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "read_file.h"

/* The reference implementation refuses headers above 100 MB; a length beyond
 * that means the first 8 bytes are not a safetensors length at all (text, HTML,
 * a pickle), so it is reported as "not a safetensors file", not as truncation. */
#define ST_MAX_HEADER 100000000ull
/* Offsets and sizes are JSON numbers (doubles): integers beyond 2^53 are not exact. */
#define ST_MAX_INT 9007199254740992.0
#define LFS_MAGIC "version https://git-lfs"
#define INDEX_MAX_BYTES (64u << 20)

static const struct {
    const char *name;
    blurb_st_dtype dtype;
    int bits;
} st_dtypes[] = {
    {"BOOL", BLURB_ST_BOOL, 8},         {"U8", BLURB_ST_U8, 8},
    {"I8", BLURB_ST_I8, 8},             {"F8_E5M2", BLURB_ST_F8_E5M2, 8},
    {"F8_E4M3", BLURB_ST_F8_E4M3, 8},   {"F8_E8M0", BLURB_ST_F8_E8M0, 8},
    {"U16", BLURB_ST_U16, 16},          {"I16", BLURB_ST_I16, 16},
    {"F16", BLURB_ST_F16, 16},          {"BF16", BLURB_ST_BF16, 16},
    {"U32", BLURB_ST_U32, 32},          {"I32", BLURB_ST_I32, 32},
    {"F32", BLURB_ST_F32, 32},          {"U64", BLURB_ST_U64, 64},
    {"I64", BLURB_ST_I64, 64},          {"F64", BLURB_ST_F64, 64},
    {"F4", BLURB_ST_F4, 4},             {"F6_E2M3", BLURB_ST_F6_E2M3, 6},
    {"F6_E3M2", BLURB_ST_F6_E3M2, 6},
};

blurb_st_dtype blurb_st_dtype_from_name(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return st_dtypes[i].dtype;
    return BLURB_ST_UNKNOWN;
}

int blurb_st_dtype_bits(blurb_st_dtype dtype) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == dtype) return st_dtypes[i].bits;
    return 0;
}

/* ---- single file ---------------------------------------------------------- */

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(((const blurb_st_tensor *)a)->name, ((const blurb_st_tensor *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const blurb_st_tensor *x = *(const blurb_st_tensor *const *)a;
    const blurb_st_tensor *y = *(const blurb_st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    uint64_t xe = x->offset + x->nbytes, ye = y->offset + y->nbytes;
    if (xe != ye) return xe < ye ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0.0) || v > ST_MAX_INT || v != (double)(uint64_t)v) return false;
    *out = (uint64_t)v;
    return true;
}

static void shape_str(const blurb_st_tensor *t, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int d = 0; d < t->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* Fills t from one header entry; the name and dtype strings stay owned by the cJSON tree. */
static int parse_entry(const char *path, const cJSON *e, blurb_st_tensor *t, blurb_err *err) {
    const char *name = e->string;
    t->name = name;
    if (!cJSON_IsObject(e))
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: bad header entry for tensor '%s': not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: bad header entry for tensor '%s': \"dtype\" missing or not a string", path, name);
    t->dtype_name = dt->valuestring;
    t->dtype = blurb_st_dtype_from_name(dt->valuestring);

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: bad header entry for tensor '%s': \"shape\" missing or not an array", path, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > BLURB_ST_MAX_DIMS)
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: tensor '%s' has %d dimensions (blurb reads at most %d)",
                            path, name, nd, BLURB_ST_MAX_DIMS);
    t->ndim = nd;
    for (int d = 0; d < BLURB_ST_MAX_DIMS; d++) t->shape[d] = 1;
    uint64_t numel = 1;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, sh) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: bad header entry for tensor '%s': shape[%d] is not a non-negative integer",
                                path, name, d);
        t->shape[d++] = (int64_t)v;
        /* 2^62 elements is far beyond any file; the bound keeps numel * bits in range. */
        if (v != 0 && numel > (UINT64_C(1) << 56) / v)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: tensor '%s': shape too large", path, name);
        numel *= v;
    }
    t->numel = (int64_t)numel;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(cJSON_GetArrayItem(off, 0), &begin) ||
        !json_uint(cJSON_GetArrayItem(off, 1), &end))
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: bad header entry for tensor '%s': \"data_offsets\" is not [begin, end] "
                            "with non-negative integers", path, name);
    if (end < begin)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] are not in increasing order (end < begin)",
                            path, name, (unsigned long long)begin, (unsigned long long)end);
    t->offset = begin;
    t->nbytes = end - begin;

    int bits = blurb_st_dtype_bits(t->dtype);
    if (bits > 0) {
        uint64_t total_bits = numel * (uint64_t)bits;
        char shp[256];
        shape_str(t, shp, sizeof shp);
        if (total_bits % 8 != 0)
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: tensor '%s': %s x shape %s is not a whole number of bytes",
                                path, name, t->dtype_name, shp);
        if (total_bits / 8 != t->nbytes)
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: tensor '%s': byte size inconsistent with dtype and shape: data_offsets "
                                "[%llu, %llu] hold %llu bytes but %s x shape %s needs %llu bytes",
                                path, name, (unsigned long long)begin, (unsigned long long)end,
                                (unsigned long long)t->nbytes, t->dtype_name, shp,
                                (unsigned long long)(total_bits / 8));
    }
    return 0;
}

/* The tensors must tile [0, data_len) exactly, as the format requires. */
static int check_layout(const char *path, blurb_st_tensor *ts, int n, uint64_t data_len, uint64_t file_size,
                        uint64_t header_len, blurb_err *err) {
    blurb_st_tensor **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) order[i] = &ts[i];
    qsort(order, (size_t)n, sizeof *order, cmp_by_offset);
    uint64_t pos = 0;
    const blurb_st_tensor *prev = NULL;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const blurb_st_tensor *t = order[i];
        if (t->offset < pos) {
            rc = blurb_seterr(err, BLURB_E_FORMAT,
                              "%s: tensor data ranges overlap: '%s' [%llu, %llu) and '%s' [%llu, %llu)", path,
                              prev->name, (unsigned long long)prev->offset,
                              (unsigned long long)(prev->offset + prev->nbytes), t->name,
                              (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes));
        } else if (t->offset > pos) {
            rc = blurb_seterr(err, BLURB_E_FORMAT,
                              "%s: tensor data ranges leave a gap: bytes [%llu, %llu) of the data belong to no "
                              "tensor (next is '%s'); the format forbids gaps", path,
                              (unsigned long long)pos, (unsigned long long)t->offset, t->name);
        }
        pos = t->offset + t->nbytes;
        prev = t;
    }
    free(order);
    if (rc) return rc;
    if (pos > data_len)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: truncated: the header declares %llu bytes of tensor data but the file holds %llu "
                            "(file is %llu bytes, expected %llu)", path, (unsigned long long)pos,
                            (unsigned long long)data_len, (unsigned long long)file_size,
                            (unsigned long long)(8 + header_len + pos));
    if (pos < data_len)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: %llu bytes after the end of the last tensor's data leave a gap; the format "
                            "forbids gaps", path, (unsigned long long)(data_len - pos));
    return 0;
}

static int parse_into(blurb_st_file *f, const uint8_t *base, size_t size, blurb_err *err) {
    const char *path = f->path;
    size_t lfs = sizeof LFS_MAGIC - 1;
    if (size >= lfs && memcmp(base, LFS_MAGIC, lfs) == 0)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: not a safetensors file: it is a Git LFS pointer (a small text file starting "
                            "\"" LFS_MAGIC "\"); the weights were never downloaded: run `git lfs pull`", path);
    if (size < 8)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: truncated: %zu bytes, the file ends before the 8-byte header length", path, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | base[i];
    if (n > ST_MAX_HEADER)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: not a safetensors file: the first 8 bytes give an absurd header length of %llu "
                            "bytes (at most %llu)", path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: truncated: the file ends before the end of its header (header is %llu bytes, "
                            "only %zu follow the length)", path, (unsigned long long)n, size - 8);
    const char *hdr = (const char *)base + 8;
    if (n == 0 || hdr[0] != '{')
        return blurb_seterr(err, BLURB_E_FORMAT,
                            "%s: not a safetensors file: the header is not a JSON object (does not start with '{')",
                            path);
    f->header_len = n;
    f->data_len = size - 8 - n;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: malformed JSON header near byte %zu of the header", path,
                            at);
    }
    f->json = root;
    /* Trailing padding is allowed (the writer aligns the data to 8 bytes with spaces). */
    for (const char *p = end; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return blurb_seterr(err, BLURB_E_FORMAT,
                                "%s: malformed JSON header: unexpected byte 0x%02x after the JSON object at byte %zu "
                                "of the header", path, (unsigned)(unsigned char)*p, (size_t)(p - hdr));
    }
    if (!cJSON_IsObject(root))
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: not a safetensors file: the header is not a JSON object",
                            path);

    int count = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e) && !cJSON_IsNull(e))
                return blurb_seterr(err, BLURB_E_FORMAT, "%s: \"__metadata__\" is not a JSON object", path);
            f->n_metadata = cJSON_GetArraySize(e);
        } else {
            count++;
        }
    }
    f->tensors = calloc((size_t)(count ? count : 1), sizeof *f->tensors);
    if (!f->tensors) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", path);
    const uint8_t *data = base + 8 + n;
    int i = 0;
    cJSON_ArrayForEach(e, root) {
        if (!e->string) return blurb_seterr(err, BLURB_E_FORMAT, "%s: header entry without a name", path);
        if (strcmp(e->string, "__metadata__") == 0) continue;
        int rc = parse_entry(path, e, &f->tensors[i], err);
        if (rc) return rc;
        i++;
    }
    f->n_tensors = count;
    qsort(f->tensors, (size_t)count, sizeof *f->tensors, cmp_by_name);
    for (int k = 1; k < count; k++)
        if (strcmp(f->tensors[k - 1].name, f->tensors[k].name) == 0)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: tensor '%s' appears twice in the header", path,
                                f->tensors[k].name);
    int rc = check_layout(path, f->tensors, count, f->data_len, size, n, err);
    if (rc) return rc;
    /* Only now are all offsets known to lie inside the buffer. */
    for (int k = 0; k < count; k++) f->tensors[k].data = data + f->tensors[k].offset;
    return 0;
}

static blurb_st_file *file_new(const char *name, blurb_err *err) {
    blurb_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(name);
    if (!f || !f->path) {
        free(f);
        blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    return f;
}

int blurb_st_parse(const char *name, const void *buf, size_t size, blurb_st_file **out, blurb_err *err) {
    *out = NULL;
    blurb_st_file *f = file_new(name, err);
    if (!f) return BLURB_E_NOMEM;
    static const uint8_t empty[1];
    int rc = parse_into(f, buf ? buf : empty, buf ? size : 0, err);
    if (rc) {
        blurb_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int blurb_st_open(const char *path, blurb_st_file **out, blurb_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return blurb_seterr(err, BLURB_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return blurb_seterr(err, BLURB_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return blurb_seterr(err, BLURB_E_IO, "%s: not a regular file", path);
    }
    blurb_st_file *f = file_new(path, err);
    if (!f) {
        close(fd);
        return BLURB_E_NOMEM;
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            blurb_st_close(f);
            return blurb_seterr(err, BLURB_E_IO, "%s: cannot mmap %zu bytes: %s", path, size, strerror(e));
        }
        f->map = map;
        f->map_len = size;
    }
    /* The mapping stays valid after the descriptor is closed. */
    if (close(fd) != 0) {
        int e = errno;
        blurb_st_close(f);
        return blurb_seterr(err, BLURB_E_IO, "%s: close failed: %s", path, strerror(e));
    }
    static const uint8_t empty[1];
    int rc = parse_into(f, map ? map : empty, size, err);
    if (rc) {
        blurb_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

const blurb_st_tensor *blurb_st_find(const blurb_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    blurb_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = name;
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_by_name);
}

void blurb_st_close(blurb_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    cJSON_Delete(f->json);
    free(f->tensors);
    free(f->path);
    free(f);
}

/* ---- set of files (model directory) --------------------------------------- */

typedef struct set_entry {
    const blurb_st_tensor *t;
    int file;
} set_entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const set_entry *)a)->t->name, ((const set_entry *)b)->t->name);
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int set_add_file(blurb_st_set *s, const char *name, blurb_err *err) {
    char *p = path_join(s->dir, name);
    if (!p) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", s->dir);
    blurb_st_file **nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
    if (!nf) {
        free(p);
        return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", s->dir);
    }
    s->files = nf;
    int rc = blurb_st_open(p, &s->files[s->n_files], err);
    free(p);
    if (rc) return rc;
    s->n_files++;
    return 0;
}

static int set_build_index(blurb_st_set *s, blurb_err *err) {
    int total = 0;
    for (int i = 0; i < s->n_files; i++) total += s->files[i]->n_tensors;
    set_entry *ents = malloc((size_t)(total ? total : 1) * sizeof *ents);
    if (!ents) return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", s->dir);
    int k = 0;
    for (int i = 0; i < s->n_files; i++)
        for (int j = 0; j < s->files[i]->n_tensors; j++) {
            ents[k].t = &s->files[i]->tensors[j];
            ents[k].file = i;
            k++;
        }
    qsort(ents, (size_t)total, sizeof *ents, cmp_entry);
    s->priv = ents;
    s->n_tensors = total;
    for (int i = 1; i < total; i++)
        if (strcmp(ents[i - 1].t->name, ents[i].t->name) == 0)
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: tensor '%s' is in two shards: %s and %s",
                                s->index_path ? s->index_path : s->dir, ents[i].t->name,
                                s->files[ents[i - 1].file]->path, s->files[ents[i].file]->path);
    return 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int set_open_index(blurb_st_set *s, blurb_err *err) {
    const char *ip = s->index_path;
    char *text = NULL;
    size_t len = 0;
    int rc = blurb_read_file(ip, INDEX_MAX_BYTES, &text, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        int line, col;
        blurb_text_line_col(text, len, end && end >= text ? (size_t)(end - text) : 0, &line, &col);
        free(text);
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: malformed JSON near line %d column %d", ip, line, col);
    }
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            int line, col;
            blurb_text_line_col(text, len, (size_t)(p - text), &line, &col);
            free(text);
            return blurb_seterr(err, BLURB_E_FORMAT, "%s: malformed JSON: extra text at line %d column %d", ip,
                                line, col);
        }
    free(text);
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return blurb_seterr(err, BLURB_E_FORMAT, "%s: no \"weight_map\" object", ip);
    }
    /* Open each shard once, in order of first mention. */
    const cJSON *e;
    rc = 0;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring || !e->valuestring[0]) {
            rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: weight_map entry '%s' is not a file name", ip,
                              e->string ? e->string : "");
            break;
        }
        const char *shard = e->valuestring;
        if (strchr(shard, '/') || strcmp(shard, ".") == 0 || strcmp(shard, "..") == 0) {
            rc = blurb_seterr(err, BLURB_E_FORMAT,
                              "%s: weight_map names shard '%s' for '%s': shards must be plain file names in the "
                              "model directory", ip, shard, e->string ? e->string : "");
            break;
        }
        bool seen = false;
        for (int i = 0; i < s->n_files && !seen; i++) seen = strcmp(base_name(s->files[i]->path), shard) == 0;
        if (seen) continue;
        rc = set_add_file(s, shard, err);
        if (rc) {
            blurb_err_prefix(err, "shard listed in %s", ip);
            break;
        }
    }
    if (rc == 0 && s->n_files == 0)
        rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: \"weight_map\" is empty", ip);
    if (rc == 0) rc = set_build_index(s, err);
    if (rc == 0) {
        cJSON_ArrayForEach(e, wm) {
            const blurb_st_file *in = NULL;
            const blurb_st_tensor *t = blurb_st_set_find(s, e->string, &in);
            if (!t || strcmp(base_name(in->path), e->valuestring) != 0) {
                rc = blurb_seterr(err, BLURB_E_FORMAT, "%s: weight_map puts tensor '%s' in %s, but %s", ip,
                                  e->string, e->valuestring,
                                  t ? "it is in another shard" : "that shard does not hold it");
                break;
            }
        }
    }
    cJSON_Delete(root);
    return rc;
}

int blurb_st_set_open(const char *dir, blurb_st_set **out, blurb_err *err) {
    *out = NULL;
    blurb_st_set *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", dir);
    }
    char *single = path_join(dir, "model.safetensors");
    char *index = path_join(dir, "model.safetensors.index.json");
    int rc = 0;
    if (!single || !index) {
        rc = blurb_seterr(err, BLURB_E_NOMEM, "%s: out of memory", dir);
    } else if (file_exists(single)) {
        rc = set_add_file(s, "model.safetensors", err);
        if (rc == 0) rc = set_build_index(s, err);
    } else if (file_exists(index)) {
        s->index_path = index;
        index = NULL;
        rc = set_open_index(s, err);
    } else {
        int e = errno;
        rc = blurb_seterr(err, BLURB_E_IO, "%s: no model weights: neither model.safetensors nor "
                          "model.safetensors.index.json found (%s)", dir, strerror(e));
    }
    free(single);
    free(index);
    if (rc) {
        blurb_st_set_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

const blurb_st_tensor *blurb_st_set_find(const blurb_st_set *s, const char *name, const blurb_st_file **file) {
    if (file) *file = NULL;
    if (!s || !name || !s->priv) return NULL;
    blurb_st_tensor kt;
    memset(&kt, 0, sizeof kt);
    kt.name = name;
    set_entry key = {&kt, 0};
    const set_entry *hit = bsearch(&key, s->priv, (size_t)s->n_tensors, sizeof key, cmp_entry);
    if (!hit) return NULL;
    if (file) *file = s->files[hit->file];
    return hit->t;
}

void blurb_st_set_close(blurb_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) blurb_st_close(s->files[i]);
    free(s->files);
    free(s->priv);
    free(s->index_path);
    free(s->dir);
    free(s);
}
