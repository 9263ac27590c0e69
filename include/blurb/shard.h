/* Sharding of a catalog job over many processes (Slurm arrays, mpirun).
 *
 * Shard I of N takes the records whose input line number L (physical line,
 * counted from 1 as catalog.h does, blank lines included) has L mod N == I.
 * So with N = 3, shard 0 holds lines 3, 6, 9, ..., shard 1 lines 1, 4, 7, ...
 * The split depends only on line numbers, never on the content, so every
 * process computes the same partition without talking to the others, and
 * `blurb merge` puts the shard outputs back into input order by their "line"
 * fields (merge.h).
 *
 * Where I and N come from, first match wins:
 *   1. --shard I/N on the command line;
 *   2. a Slurm job array: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT set;
 *      I = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP
 *      (MIN defaults to 0, STEP to 1 when unset), N = SLURM_ARRAY_TASK_COUNT;
 *   3. Open MPI: OMPI_COMM_WORLD_RANK / OMPI_COMM_WORLD_SIZE;
 *   4. PMI (MPICH, Intel MPI, srun --mpi=pmi2): PMI_RANK / PMI_SIZE;
 *   5. otherwise one shard: I = 0, N = 1 (no sharding).
 * The GPU of a process is its local rank (its index among the processes on
 * the same node: OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID, else 0)
 * modulo the number of visible GPUs, so that `mpirun -n 8` on an 8-GPU node
 * puts one process on each GPU. */
#ifndef BLURB_SHARD_H
#define BLURB_SHARD_H

#include <stdbool.h>
#include <stddef.h>

#include "blurb/catalog.h"
#include "blurb/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blurb_shard {
    long index;          /* I, 0 <= I < N */
    long count;          /* N >= 1; 1 = not sharded */
    long local_rank;     /* >= 0; 0 when no launcher says otherwise */
    const char *source;  /* static text: "--shard", "slurm array", "open mpi", "pmi" or "none" */
} blurb_shard;

/* Parses "I/N" (decimal, 0 <= I < N, N >= 1, nothing else) into s->index and
 * s->count. Returns 0 or BLURB_E_INVALID naming the text. */
int blurb_shard_parse(const char *text, blurb_shard *s, blurb_err *err);

/* Fills s from the environment as described above. envp is a NULL-terminated
 * array of "NAME=VALUE" strings (NULL = the process environment, `environ`);
 * explicit (may be NULL) is the --shard text, which wins over every variable.
 * Returns 0, or BLURB_E_INVALID when a variable that is used is not a number
 * or gives an impossible shard (e.g. SLURM_ARRAY_TASK_ID below _MIN, or a
 * rank >= size), naming the variable. */
int blurb_shard_detect(const char *const *envp, const char *explicit_shard, blurb_shard *s, blurb_err *err);

/* The GPU ordinal for local rank r with n_gpus visible GPUs: r mod n_gpus,
 * or 0 when n_gpus < 1. */
int blurb_shard_device(long local_rank, int n_gpus);

/* Visible CUDA devices (cudaGetDeviceCount), 0 in a build without CUDA or
 * when the runtime reports none or fails. */
int blurb_shard_gpu_count(void);

/* The output path of a shard, malloc'ed into *out: when path contains
 * "{shard}", every "{shard}" is replaced by "I-of-N"; otherwise ".I-of-N" is
 * appended (out.jsonl -> out.jsonl.2-of-8). With N == 1 the path is returned
 * as given ("{shard}" replaced by "0-of-1"). Returns 0 or BLURB_E_NOMEM. */
int blurb_shard_output_path(const char *path, const blurb_shard *s, char **out, blurb_err *err);

/* Keeps only the catalog lines of shard s (line_no mod count == index),
 * in place: cat->lines is compacted and cat->n_lines lowered. */
void blurb_shard_filter(blurb_catalog *cat, const blurb_shard *s);

#ifdef BLURB_HAVE_CUDA
/* host/cuda_device_count.c: cudaGetDeviceCount, 0 on failure. */
int blurb_cuda_device_count(void);
#endif

#ifdef __cplusplus
}
#endif
#endif
