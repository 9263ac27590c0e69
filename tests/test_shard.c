/* Sharding (include/blurb/shard.h): --shard parsing, the Slurm array and MPI
 * environment variables, their precedence, the GPU from the local rank, the
 * shard output names and the line filter. */
#include <stdlib.h>
#include <string.h>

#include "blurb/shard.h"
#include "check.h"

static int detect(const char *const *envp, const char *explicit_shard, blurb_shard *s) {
    blurb_err err;
    blurb_err_clear(&err);
    return blurb_shard_detect(envp, explicit_shard, s, &err);
}

static void test_parse(void) {
    blurb_shard s;
    blurb_err err;
    CHECK(blurb_shard_parse("0/3", &s, &err) == 0 && s.index == 0 && s.count == 3);
    CHECK(blurb_shard_parse("2/3", &s, &err) == 0 && s.index == 2 && s.count == 3);
    CHECK(blurb_shard_parse("0/1", &s, &err) == 0 && s.index == 0 && s.count == 1);
    const char *bad[] = {"3/3", "-1/3", "1/0", "1", "/3", "1/", "a/3", "1/3x", "1 /3", "+1/3", "1/+3", "", NULL};
    for (int i = 0; bad[i]; i++) {
        blurb_err_clear(&err);
        CHECKF(blurb_shard_parse(bad[i], &s, &err) == BLURB_E_INVALID, "'%s'", bad[i]);
        CHECK(strstr(err.msg, bad[i]) != NULL);
    }
}

static void test_env(void) {
    blurb_shard s;
    /* Nothing set: one shard, device 0. */
    const char *none[] = {"HOME=/root", NULL};
    CHECK(detect(none, NULL, &s) == 0 && s.index == 0 && s.count == 1 && s.local_rank == 0);
    CHECK(strcmp(s.source, "none") == 0);

    /* Slurm array --array=10-40:10 (IDs 10, 20, 30, 40): task 30 is index (30-10)/10 = 2 of 4. */
    const char *slurm[] = {"SLURM_ARRAY_TASK_ID=30", "SLURM_ARRAY_TASK_MIN=10", "SLURM_ARRAY_TASK_STEP=10",
                           "SLURM_ARRAY_TASK_COUNT=4", "SLURM_LOCALID=3", NULL};
    CHECK(detect(slurm, NULL, &s) == 0 && s.index == 2 && s.count == 4 && s.local_rank == 3);
    CHECK(strcmp(s.source, "slurm array") == 0);
    /* --array=0-7 without MIN/STEP in the environment: MIN 0, STEP 1. */
    const char *slurm2[] = {"SLURM_ARRAY_TASK_ID=5", "SLURM_ARRAY_TASK_COUNT=8", NULL};
    CHECK(detect(slurm2, NULL, &s) == 0 && s.index == 5 && s.count == 8 && s.local_rank == 0);
    /* An ID off the step grid or past the count is an error naming the variables. */
    const char *slurm_bad[] = {"SLURM_ARRAY_TASK_ID=25", "SLURM_ARRAY_TASK_MIN=10", "SLURM_ARRAY_TASK_STEP=10",
                               "SLURM_ARRAY_TASK_COUNT=4", NULL};
    blurb_err err;
    blurb_err_clear(&err);
    CHECK(blurb_shard_detect(slurm_bad, NULL, &s, &err) == BLURB_E_INVALID && strstr(err.msg, "SLURM_ARRAY_TASK_ID=25"));
    const char *slurm_bad2[] = {"SLURM_ARRAY_TASK_ID=8", "SLURM_ARRAY_TASK_COUNT=8", NULL};
    CHECK(detect(slurm_bad2, NULL, &s) == BLURB_E_INVALID);
    const char *slurm_nan[] = {"SLURM_ARRAY_TASK_ID=x", "SLURM_ARRAY_TASK_COUNT=8", NULL};
    blurb_err_clear(&err);
    CHECK(blurb_shard_detect(slurm_nan, NULL, &s, &err) == BLURB_E_INVALID && strstr(err.msg, "SLURM_ARRAY_TASK_ID"));

    /* Open MPI: rank 5 of 8, local rank 1 (second process on its node). */
    const char *ompi[] = {"OMPI_COMM_WORLD_RANK=5", "OMPI_COMM_WORLD_SIZE=8", "OMPI_COMM_WORLD_LOCAL_RANK=1", NULL};
    CHECK(detect(ompi, NULL, &s) == 0 && s.index == 5 && s.count == 8 && s.local_rank == 1);
    CHECK(strcmp(s.source, "open mpi") == 0);
    const char *ompi_bad[] = {"OMPI_COMM_WORLD_RANK=8", "OMPI_COMM_WORLD_SIZE=8", NULL};
    CHECK(detect(ompi_bad, NULL, &s) == BLURB_E_INVALID);

    /* PMI: rank 3 of 4, local rank from SLURM_LOCALID (srun --mpi=pmi2). */
    const char *pmi[] = {"PMI_RANK=3", "PMI_SIZE=4", "SLURM_LOCALID=2", NULL};
    CHECK(detect(pmi, NULL, &s) == 0 && s.index == 3 && s.count == 4 && s.local_rank == 2);
    CHECK(strcmp(s.source, "pmi") == 0);
    /* A rank without a size is no shard. */
    const char *pmi_half[] = {"PMI_RANK=3", NULL};
    CHECK(detect(pmi_half, NULL, &s) == 0 && s.count == 1);

    /* Precedence: Slurm array over Open MPI over PMI; OMPI local rank over SLURM_LOCALID. */
    const char *all[] = {"PMI_RANK=1", "PMI_SIZE=2", "OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3",
                         "OMPI_COMM_WORLD_LOCAL_RANK=6", "SLURM_LOCALID=4", "SLURM_ARRAY_TASK_ID=1",
                         "SLURM_ARRAY_TASK_COUNT=5", NULL};
    CHECK(detect(all, NULL, &s) == 0 && s.index == 1 && s.count == 5 && s.local_rank == 6);
    CHECK(detect(all + 4, NULL, &s) == 0 && s.index == 1 && s.count == 5 && s.local_rank == 6);
    const char *mpi_pmi[] = {"PMI_RANK=1", "PMI_SIZE=2", "OMPI_COMM_WORLD_RANK=2", "OMPI_COMM_WORLD_SIZE=3", NULL};
    CHECK(detect(mpi_pmi, NULL, &s) == 0 && s.index == 2 && s.count == 3);
    /* --shard wins over every variable, but the local rank still comes from the environment. */
    CHECK(detect(all, "0/2", &s) == 0 && s.index == 0 && s.count == 2 && s.local_rank == 6);
    CHECK(strcmp(s.source, "--shard") == 0);
    CHECK(detect(all, "2/2", &s) == BLURB_E_INVALID);

    /* The process environment (envp NULL). */
    setenv("OMPI_COMM_WORLD_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    CHECK(detect(NULL, NULL, &s) == 0 && s.index == 1 && s.count == 2);
    unsetenv("OMPI_COMM_WORLD_RANK");
    unsetenv("OMPI_COMM_WORLD_SIZE");
}

static void test_device(void) {
    CHECK(blurb_shard_device(0, 8) == 0);
    CHECK(blurb_shard_device(6, 8) == 6);
    CHECK(blurb_shard_device(9, 8) == 1);
    CHECK(blurb_shard_device(5, 2) == 1);
    CHECK(blurb_shard_device(5, 0) == 0); /* no GPU: the ordinal is unused, 0 */
    /* Environment to GPU: Open MPI local rank 5 on a 4-GPU node uses GPU 1. */
    const char *ompi[] = {"OMPI_COMM_WORLD_RANK=13", "OMPI_COMM_WORLD_SIZE=16", "OMPI_COMM_WORLD_LOCAL_RANK=5", NULL};
    blurb_shard s;
    CHECK(detect(ompi, NULL, &s) == 0 && blurb_shard_device(s.local_rank, 4) == 1);
    const char *slurm[] = {"SLURM_ARRAY_TASK_ID=3", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_LOCALID=3", NULL};
    CHECK(detect(slurm, NULL, &s) == 0 && blurb_shard_device(s.local_rank, 2) == 1);
#ifndef BLURB_HAVE_CUDA
    CHECK(blurb_shard_gpu_count() == 0);
#endif
}

static void test_paths(void) {
    blurb_err err;
    char *p = NULL;
    blurb_shard s = {2, 8, 0, "--shard"};
    CHECK(blurb_shard_output_path("out.jsonl", &s, &p, &err) == 0 && strcmp(p, "out.jsonl.2-of-8") == 0);
    free(p);
    CHECK(blurb_shard_output_path("d/{shard}/out-{shard}.jsonl", &s, &p, &err) == 0 &&
          strcmp(p, "d/2-of-8/out-2-of-8.jsonl") == 0);
    free(p);
    blurb_shard one = {0, 1, 0, "none"};
    CHECK(blurb_shard_output_path("out.jsonl", &one, &p, &err) == 0 && strcmp(p, "out.jsonl") == 0);
    free(p);
    CHECK(blurb_shard_output_path("o{shard}", &one, &p, &err) == 0 && strcmp(p, "o0-of-1") == 0);
    free(p);
}

static void test_filter(void) {
    /* Lines 1..7 with line 4 blank: records 1,2,3,5,6,7. */
    const char text[] = "{}\n{}\n{}\n\n{}\n{}\n{}\n";
    long want[3][3] = {{3, 6, 0}, {1, 7, 0}, {2, 5, 0}};
    size_t want_n[3] = {2, 2, 2};
    for (long i = 0; i < 3; i++) {
        blurb_catalog *cat = NULL;
        blurb_err err;
        REQUIRE(blurb_catalog_from_memory(text, sizeof text - 1, &cat, &err) == 0);
        REQUIRE(cat->n_lines == 6);
        blurb_shard s = {i, 3, 0, "--shard"};
        blurb_shard_filter(cat, &s);
        CHECK(cat->n_lines == want_n[i]);
        for (size_t k = 0; k < cat->n_lines && k < 3; k++) CHECK(cat->lines[k].line_no == want[i][k]);
        blurb_catalog_free(cat);
    }
}

int main(void) {
    test_parse();
    test_env();
    test_device();
    test_paths();
    test_filter();
    return check_finish("test_shard");
}
