/*
 * Runs one workload: setup, threads released together by a barrier, the
 * timed loop, cleanup and the summary line.
 */
#ifndef CMKBENCH_RUN_H
#define CMKBENCH_RUN_H

#include "bench.h"

struct run_config {
	unsigned threads;
	unsigned long count;   /* ops per thread; 0 means use seconds */
	double seconds;        /* per thread, when count is 0 */
};

/* Returns the number of errors, or -1 if the workload could not run. */
long run_workload(struct bench_env *env, const struct workload *wl,
		  const struct run_config *cfg);

void run_thread_fail(struct bench_thread *t, const char *fn_name, CK_RV rv);
void run_thread_fail_msg(struct bench_thread *t, const char *msg);
int run_thread_remember(struct bench_thread *t, CK_OBJECT_HANDLE h);
uint64_t run_thread_rand(struct bench_thread *t);

#endif
