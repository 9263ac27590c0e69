/* safetensors reader: the file format only, nothing of GPT-2.
 *
 * Format (https://huggingface.co/docs/safetensors, reference implementation
 * github.com/huggingface/safetensors): an 8-byte little-endian unsigned header
 * length N, N bytes of UTF-8 JSON (an object, possibly padded with trailing
 * spaces), then the data buffer. Each JSON entry except "__metadata__" is a
 * tensor {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]} with
 * offsets in bytes relative to the data buffer. The format requires the
 * tensors to tile the buffer exactly: no overlap, no gap, nothing after the
 * last tensor.
 *
 * Files are memory-mapped read-only; tensor data pointers point into the map
 * and live until the file (or set) is closed. Data is little-endian and may be
 * unaligned for its dtype: read it with memcpy or byte loads.
 *
 * A "set" is a model directory in the HF hub layout: model.safetensors, or
 * model.safetensors.index.json whose "weight_map" maps each tensor name to a
 * shard file in the same directory. */
#ifndef BLURB_SAFETENSORS_H
#define BLURB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types named by the safetensors format. Any other dtype string is
 * BLURB_ST_UNKNOWN: such a tensor is still listed (its byte size cannot be
 * checked against its shape), and a consumer rejects it if it needs it. */
typedef enum blurb_st_dtype {
    BLURB_ST_UNKNOWN = 0,
    BLURB_ST_BOOL,
    BLURB_ST_U8, BLURB_ST_I8,
    BLURB_ST_F8_E5M2, BLURB_ST_F8_E4M3, BLURB_ST_F8_E8M0,
    BLURB_ST_U16, BLURB_ST_I16, BLURB_ST_F16, BLURB_ST_BF16,
    BLURB_ST_U32, BLURB_ST_I32, BLURB_ST_F32,
    BLURB_ST_U64, BLURB_ST_I64, BLURB_ST_F64,
    BLURB_ST_F4, BLURB_ST_F6_E2M3, BLURB_ST_F6_E3M2
} blurb_st_dtype;

/* Most dimensions a tensor may have (more is rejected as a format error). */
#define BLURB_ST_MAX_DIMS 8

/* Maps a safetensors dtype string ("F16", "BF16", ...) to its enum; BLURB_ST_UNKNOWN if unknown. */
blurb_st_dtype blurb_st_dtype_from_name(const char *name);
/* Bits per element (1-byte BOOL is 8, F4 is 4, F6_* are 6); 0 for BLURB_ST_UNKNOWN. */
int blurb_st_dtype_bits(blurb_st_dtype dtype);

typedef struct blurb_st_tensor {
    const char *name;      /* as in the header (owned by the file) */
    const char *dtype_name;/* the header's dtype string, also for unknown dtypes */
    blurb_st_dtype dtype;
    int ndim;              /* 0 (scalar) .. BLURB_ST_MAX_DIMS */
    int64_t shape[BLURB_ST_MAX_DIMS]; /* elements; unused dims are 1 */
    int64_t numel;         /* product of shape (1 for a scalar) */
    const void *data;      /* into the map; nbytes bytes */
    uint64_t nbytes;       /* end - begin of data_offsets */
    uint64_t offset;       /* begin of data_offsets, relative to the data buffer */
} blurb_st_tensor;

typedef struct blurb_st_file {
    char *path;            /* as opened (owned) */
    int n_tensors;
    blurb_st_tensor *tensors; /* sorted by name */
    uint64_t header_len;   /* N: bytes of JSON header */
    uint64_t data_len;     /* bytes of the data buffer */
    int n_metadata;        /* string entries of "__metadata__" (0 when empty or absent) */
    void *map;             /* private: the mapping */
    size_t map_len;
    void *json;            /* private: parsed header */
} blurb_st_file;

/* Opens and validates a safetensors file, mapping it read-only.
 * Returns 0, or a negative code with err naming path and the problem:
 *   BLURB_E_IO      cannot open / stat / map (errno text), or not a regular file;
 *   BLURB_E_FORMAT  "not a safetensors file" (absurd header length, header not a
 *                   JSON object, or a Git LFS pointer file: the weights were never
 *                   fetched), "truncated" (ends before the end of the header or of
 *                   the data the header declares), "malformed JSON header",
 *                   data ranges that overlap, leave a gap, trail extra bytes or
 *                   have begin > end, a byte size that is not numel * dtype size,
 *                   a bad entry (missing/mistyped dtype, shape or data_offsets),
 *                   a duplicate tensor name;
 *   BLURB_E_NOMEM. */
int blurb_st_open(const char *path, blurb_st_file **out, blurb_err *err);

/* Same validation on a buffer already in memory (size bytes); name is used in
 * messages. The buffer must outlive the returned file; it is not freed by close. */
int blurb_st_parse(const char *name, const void *buf, size_t size, blurb_st_file **out, blurb_err *err);

/* Finds a tensor by exact name (binary search); NULL if absent. */
const blurb_st_tensor *blurb_st_find(const blurb_st_file *f, const char *name);

/* Unmaps and frees. NULL is allowed. */
void blurb_st_close(blurb_st_file *f);

/* A model directory's weights: one file or an index plus shards. */
typedef struct blurb_st_set {
    char *dir;             /* owned */
    char *index_path;      /* model.safetensors.index.json, or NULL for one file (owned) */
    int n_files;
    blurb_st_file **files; /* n_files opened files */
    int n_tensors;         /* over all files */
    void *priv;            /* private: sorted name index */
} blurb_st_set;

/* Opens dir/model.safetensors if it exists, else dir/model.safetensors.index.json
 * and every shard its "weight_map" names (each file opened once). Checks that each
 * tensor of the weight map is in the shard it names and that no name appears in
 * two shards. Shard names must be plain file names (no '/').
 * Returns 0, or the codes of blurb_st_open, BLURB_E_IO when neither file exists
 * (both names given), BLURB_E_FORMAT for a malformed index (message names it). */
int blurb_st_set_open(const char *dir, blurb_st_set **out, blurb_err *err);

/* Finds a tensor by name across the set; *file (may be NULL) receives the file
 * that holds it. NULL if absent. */
const blurb_st_tensor *blurb_st_set_find(const blurb_st_set *s, const char *name,
                                         const blurb_st_file **file);

/* Closes every file. NULL is allowed. */
void blurb_st_set_close(blurb_st_set *s);

#ifdef __cplusplus
}
#endif
#endif
