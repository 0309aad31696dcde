/*
 * Lifetime of the module inside the benchmark process: initialised once,
 * with one logged-in session kept open, except while a workload that
 * initialises the module itself is running.
 */
#ifndef CMKBENCH_ENV_H
#define CMKBENCH_ENV_H

#include "bench.h"
#include "bench_p11.h"

int env_open(struct bench_env *env, const char *module_path,
	     const struct p11_slot_choice *choice, const char *pin);
int env_session_start(struct bench_env *env);
void env_session_stop(struct bench_env *env);
void env_close(struct bench_env *env);

#endif
