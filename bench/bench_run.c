/*
 * Thread orchestration and timing for one workload.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_run.h"
#include "bench_env.h"
#include "bench_p11.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run_state {
	struct bench_env *env;
	const struct workload *wl;
	const struct run_config *cfg;
	struct wl_shared *sh;
	pthread_barrier_t barrier;
	struct bench_thread *threads;
	unsigned nthreads;
};

struct run_arg {
	struct run_state *rs;
	struct bench_thread *t;
};

void run_thread_fail_msg(struct bench_thread *t, const char *msg)
{
	t->errors++;
	if (!atomic_exchange(&t->sh->error_reported, true))
		fprintf(stderr, "cmkbench: %s: thread %u: %s\n",
			t->sh->wl->name, t->index, msg);
}

void run_thread_fail(struct bench_thread *t, const char *fn_name, CK_RV rv)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s failed: rv=0x%08lx", fn_name,
		 (unsigned long)rv);
	run_thread_fail_msg(t, msg);
}

int run_thread_remember(struct bench_thread *t, CK_OBJECT_HANDLE h)
{
	struct handle_list *l = &t->created;
	CK_OBJECT_HANDLE *p;

	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;

		p = realloc(l->items, cap * sizeof(*p));
		if (!p)
			return -1;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->len++] = h;
	return 0;
}

/* xorshift64*: cheap, lock free, and good enough to spread label picks. */
uint64_t run_thread_rand(struct bench_thread *t)
{
	uint64_t x = t->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static int run_thread_prepare(struct run_state *rs, struct bench_thread *t)
{
	CK_RV rv;

	t->rng = clock_now_ns() ^ (0x9e3779b97f4a7c15ULL * (t->index + 1));
	if (rs->cfg->count &&
	    lat_buf_reserve(&t->lat, (size_t)rs->cfg->count) != 0) {
		run_thread_fail_msg(t, "out of memory for latencies");
		return -1;
	}
	if (!(rs->wl->flags & WL_NEEDS_SESSION))
		return 0;
	rv = p11_session_open(rs->env->fn, rs->env->slot, &t->session);
	if (rv != CKR_OK) {
		run_thread_fail(t, "C_OpenSession", rv);
		return -1;
	}
	return 0;
}

static void run_thread_loop(struct run_state *rs, struct bench_thread *t)
{
	const struct run_config *cfg = rs->cfg;
	uint64_t deadline, t0, t1 = 0;
	unsigned long i;

	t->start_ns = clock_now_ns();
	deadline = t->start_ns + (uint64_t)(cfg->seconds * 1e9);
	for (i = 0;; i++) {
		if (cfg->count && i >= cfg->count)
			break;
		t0 = clock_now_ns();
		if (rs->wl->op(t, i) == 0) {
			t1 = clock_now_ns();
			if (lat_buf_push(&t->lat, t1 - t0) != 0) {
				run_thread_fail_msg(t, "out of memory");
				break;
			}
		} else {
			t1 = clock_now_ns();
		}
		if (!cfg->count && t1 >= deadline)
			break;
	}
	t->end_ns = clock_now_ns();
}

static void *run_thread_main(void *arg)
{
	struct run_arg *ra = arg;
	struct run_state *rs = ra->rs;
	struct bench_thread *t = ra->t;
	int ready = run_thread_prepare(rs, t);

	/* Sessions are opened before the barrier so only ops are timed. */
	if (rs->nthreads > 1)
		pthread_barrier_wait(&rs->barrier);
	if (ready == 0)
		run_thread_loop(rs, t);
	if (rs->wl->cleanup)
		rs->wl->cleanup(t);
	if (t->session != CK_INVALID_HANDLE)
		rs->env->fn->C_CloseSession(t->session);
	return NULL;
}

static void run_threads_start(struct run_state *rs, struct run_arg *args,
			      pthread_t *tids)
{
	unsigned k;

	if (rs->nthreads == 1) {
		/* Single thread, and the module-owning workloads, stay on the
		 * main thread as the module may have been initialised there. */
		run_thread_main(&args[0]);
		return;
	}
	pthread_barrier_init(&rs->barrier, NULL, rs->nthreads);
	for (k = 0; k < rs->nthreads; k++) {
		if (pthread_create(&tids[k], NULL, run_thread_main,
				   &args[k]) != 0) {
			/* The barrier can never open now; give up loudly. */
			fprintf(stderr, "cmkbench: pthread_create failed\n");
			exit(2);
		}
	}
	for (k = 0; k < rs->nthreads; k++)
		pthread_join(tids[k], NULL);
	pthread_barrier_destroy(&rs->barrier);
}

static double run_wall_seconds(const struct run_state *rs)
{
	uint64_t first = UINT64_MAX, last = 0;
	unsigned k;

	for (k = 0; k < rs->nthreads; k++) {
		const struct bench_thread *t = &rs->threads[k];

		if (t->start_ns == 0)
			continue;
		if (t->start_ns < first)
			first = t->start_ns;
		if (t->end_ns > last)
			last = t->end_ns;
	}
	return last > first ? (double)(last - first) / 1e9 : 0.0;
}

static long run_report(struct run_state *rs)
{
	struct stats_summary sum;
	struct stats_line line;
	struct lat_buf *bufs;
	unsigned long errors = 0;
	unsigned k;

	bufs = calloc(rs->nthreads, sizeof(*bufs));
	if (!bufs)
		return -1;
	for (k = 0; k < rs->nthreads; k++) {
		bufs[k] = rs->threads[k].lat;
		errors += rs->threads[k].errors;
	}
	if (stats_summarize(bufs, rs->nthreads, run_wall_seconds(rs), &sum)) {
		free(bufs);
		return -1;
	}
	free(bufs);
	line.workload = rs->wl->name;
	line.module = rs->env->module_name;
	line.threads = rs->nthreads;
	line.objects = rs->env->objects;
	line.errors = errors;
	stats_print_json(stdout, &line, &sum);
	return (long)errors;
}

static void run_threads_free(struct run_state *rs)
{
	unsigned k;

	for (k = 0; k < rs->nthreads; k++) {
		lat_buf_free(&rs->threads[k].lat);
		free(rs->threads[k].created.items);
	}
	free(rs->threads);
}

static long run_execute(struct run_state *rs)
{
	struct run_arg *args;
	pthread_t *tids;
	unsigned k;
	long result = -1;

	rs->threads = calloc(rs->nthreads, sizeof(*rs->threads));
	args = calloc(rs->nthreads, sizeof(*args));
	tids = calloc(rs->nthreads, sizeof(*tids));
	if (rs->threads && args && tids) {
		for (k = 0; k < rs->nthreads; k++) {
			rs->threads[k].index = k;
			rs->threads[k].sh = rs->sh;
			rs->threads[k].session = CK_INVALID_HANDLE;
			args[k].rs = rs;
			args[k].t = &rs->threads[k];
		}
		run_threads_start(rs, args, tids);
		result = run_report(rs);
	}
	if (rs->threads)
		run_threads_free(rs);
	free(args);
	free(tids);
	return result;
}

long run_workload(struct bench_env *env, const struct workload *wl,
		  const struct run_config *cfg)
{
	struct run_state rs;
	struct wl_shared *sh;
	long result;

	/* Large buffers live on the heap, not on the main stack. */
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return -1;
	sh->env = env;
	sh->wl = wl;
	atomic_init(&sh->error_reported, false);
	if (wl->setup && wl->setup(sh) != 0) {
		fprintf(stderr, "cmkbench: %s: setup failed, skipped\n",
			wl->name);
		free(sh);
		return -1;
	}
	memset(&rs, 0, sizeof(rs));
	rs.env = env;
	rs.wl = wl;
	rs.cfg = cfg;
	rs.sh = sh;
	rs.nthreads = (wl->flags & WL_OWNS_MODULE) ? 1 : cfg->threads;
	if (wl->flags & WL_OWNS_MODULE)
		env_session_stop(env);
	result = run_execute(&rs);
	if ((wl->flags & WL_OWNS_MODULE) && env_session_start(env) != 0)
		result = -1;
	free(sh);
	return result;
}
