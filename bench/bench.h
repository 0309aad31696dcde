/*
 * Types shared by the cmkbench pieces: the loaded environment, the state a
 * workload prepares once, the per-thread state and the workload descriptor.
 */
#ifndef CMKBENCH_BENCH_H
#define CMKBENCH_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "bench_stats.h"

#define BENCH_GCM_IV_LEN 12
#define BENCH_GCM_TAG_LEN 16
#define BENCH_GCM_PLAIN_LEN 4096
#define BENCH_SIG_MAX 512

struct bench_env {
	void *dl;
	CK_FUNCTION_LIST_PTR fn;
	const char *module_path;
	const char *module_name;
	CK_SLOT_ID slot;
	const char *pin;
	/* Held open for the whole run: the login state of a token lasts only
	 * while at least one session of the application is open. */
	CK_SESSION_HANDLE session;
	int initialized;
	unsigned long objects;
	/* argv for the --child-find-sign re-exec, built once before any fork. */
	char **child_argv;
};

struct workload;

/* Prepared once per workload by its setup, read-only while ops run. */
struct wl_shared {
	const struct bench_env *env;
	const struct workload *wl;
	CK_OBJECT_HANDLE priv;
	CK_OBJECT_HANDLE pub;
	CK_OBJECT_HANDLE secret;
	unsigned char data[64];
	CK_ULONG data_len;
	unsigned char sig[BENCH_SIG_MAX];
	CK_ULONG sig_len;
	unsigned char iv[BENCH_GCM_IV_LEN];
	unsigned char cipher[BENCH_GCM_PLAIN_LEN + BENCH_GCM_TAG_LEN];
	CK_ULONG cipher_len;
	long pid;
	/* Only the first failing op of a workload is reported on stderr. */
	atomic_bool error_reported;
};

struct handle_list {
	CK_OBJECT_HANDLE *items;
	size_t len;
	size_t cap;
};

struct bench_thread {
	unsigned index;
	struct wl_shared *sh;
	CK_SESSION_HANDLE session;
	struct lat_buf lat;
	unsigned long errors;
	uint64_t rng;
	uint64_t start_ns;
	uint64_t end_ns;
	/* Objects made by keygen ops, destroyed after the timed loop. */
	struct handle_list created;
};

enum wl_flags {
	WL_NEEDS_SESSION = 1u << 0,
	/* Runs on the main thread only, with the module finalised around it. */
	WL_OWNS_MODULE = 1u << 1,
	WL_NEEDS_OBJECTS = 1u << 2,
	/* Needs cmkp11's vendor attributes: left out of "all", which must run
	 * on any module (the backend alone). */
	WL_CMKP11_ONLY = 1u << 3,
};

struct workload {
	const char *name;
	unsigned flags;
	int (*setup)(struct wl_shared *sh);
	/* Returns 0, or -1 after recording the failure with run_thread_fail. */
	int (*op)(struct bench_thread *t, unsigned long i);
	void (*cleanup)(struct bench_thread *t);
};

#endif
