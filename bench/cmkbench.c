/*
 * cmkbench: run named PKCS#11 workloads against any module and print one
 * JSON line per workload, so two modules can be compared side by side.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench.h"
#include "bench_child.h"
#include "bench_env.h"
#include "bench_keys.h"
#include "bench_run.h"
#include "bench_workloads.h"
#include "cmkp11/cmkp11.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_MAX_WORKLOADS 64
#define MAIN_MAX_THREADS 64
#define MAIN_DEFAULT_SECONDS 2.0

struct main_opts {
	const char *module;
	const char *pin;
	struct p11_slot_choice slot;
	const struct workload *wls[MAIN_MAX_WORKLOADS];
	size_t nwls;
	struct run_config run;
	unsigned long objects;
	CK_ULONG objects_level; /* 0, or cmkp11's protection level */
};

static void main_usage(FILE *out)
{
	size_t k;

	fputs("usage: cmkbench --module PATH [--token-label LABEL | --slot N]\n"
	      "                [--pin PIN] --workload NAME [--workload NAME ...]\n"
	      "                [--count N | --seconds S] [--threads N]\n"
	      "                [--objects N] [--objects-level hsm|software]\n"
	      "\n"
	      "  --module PATH        PKCS#11 module to load (required)\n"
	      "  --token-label LABEL  use the slot whose token has this label\n"
	      "  --slot N             use slot id N\n"
	      "  --pin PIN            user PIN (default: $BENCH_PIN)\n"
	      "  --workload NAME      workload to run, repeatable; 'all' runs\n"
	      "                       every workload\n"
	      "  --count N            ops per thread\n"
	      "  --seconds S          run time per thread (default 2)\n"
	      "  --threads N          concurrent sessions, 1..64 (default 1)\n"
	      "  --objects N          make sure bench-obj-0..N-1 exist for the\n"
	      "                       find/init workloads\n"
	      "  --objects-level L    make them as cmkp11 CMKs of protection level\n"
	      "                       L (hsm or software; default: a standard\n"
	      "                       template). SOFTWARE CMKs have no backend\n"
	      "                       object, so a store can grow past what the\n"
	      "                       backend's own object store holds well\n"
	      "\n"
	      "workloads:\n",
	      out);
	for (k = 0; k < wl_total(); k++)
		fprintf(out, "  %s\n", wl_at(k)->name);
}

static int main_parse_ulong(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno || end == s || *end || s[0] == '-') ? -1 : 0;
}

static int main_add_workload(struct main_opts *o, const char *name)
{
	size_t k;

	if (strcmp(name, "all") == 0) {
		for (k = 0; k < wl_total(); k++)
			if (!(wl_at(k)->flags & WL_CMKP11_ONLY) &&
			    main_add_workload(o, wl_at(k)->name) != 0)
				return -1;
		return 0;
	}
	if (o->nwls == MAIN_MAX_WORKLOADS) {
		fprintf(stderr, "cmkbench: too many --workload options\n");
		return -1;
	}
	o->wls[o->nwls] = wl_lookup(name);
	if (!o->wls[o->nwls]) {
		fprintf(stderr, "cmkbench: unknown workload '%s'\n", name);
		return -1;
	}
	o->nwls++;
	return 0;
}

static int main_parse_seconds(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return (end == s || *end || !(*out > 0.0)) ? -1 : 0;
}

static int main_parse_option(struct main_opts *o, int c, const char *arg)
{
	unsigned long v;

	switch (c) {
	case 'm':
		o->module = arg;
		return 0;
	case 'l':
		o->slot.token_label = arg;
		return 0;
	case 's':
		o->slot.have_slot_id = 1;
		if (main_parse_ulong(arg, &v) != 0)
			return -1;
		o->slot.slot_id = v;
		return 0;
	case 'p':
		o->pin = arg;
		return 0;
	case 'w':
		return main_add_workload(o, arg);
	case 'c':
		return (main_parse_ulong(arg, &o->run.count) != 0 ||
			o->run.count == 0) ? -1 : 0;
	case 'S':
		return main_parse_seconds(arg, &o->run.seconds);
	case 't':
		if (main_parse_ulong(arg, &v) != 0 || v < 1 ||
		    v > MAIN_MAX_THREADS)
			return -1;
		o->run.threads = (unsigned)v;
		return 0;
	case 'o':
		return main_parse_ulong(arg, &o->objects);
	case 'L':
		if (strcmp(arg, "hsm") == 0)
			o->objects_level = CMK_PROTECTION_HSM;
		else if (strcmp(arg, "software") == 0)
			o->objects_level = CMK_PROTECTION_SOFTWARE;
		else
			return -1;
		return 0;
	default:
		return -1;
	}
}

static int main_check_opts(struct main_opts *o)
{
	if (!o->module) {
		fprintf(stderr, "cmkbench: --module is required\n");
		return -1;
	}
	if (o->nwls == 0) {
		fprintf(stderr, "cmkbench: give at least one --workload\n");
		return -1;
	}
	if (o->run.count && o->run.seconds > 0.0) {
		fprintf(stderr, "cmkbench: --count and --seconds exclude "
				"each other\n");
		return -1;
	}
	if (!o->run.count && !(o->run.seconds > 0.0))
		o->run.seconds = MAIN_DEFAULT_SECONDS;
	if (!o->pin)
		o->pin = getenv("BENCH_PIN");
	if (!o->pin) {
		fprintf(stderr, "cmkbench: --pin or BENCH_PIN is required\n");
		return -1;
	}
	return 0;
}

/* Returns 0 to go on, 1 to exit 0 (--help), 2 on a usage error. */
static int main_parse(int argc, char **argv, struct main_opts *o)
{
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "token-label", required_argument, NULL, 'l' },
		{ "slot", required_argument, NULL, 's' },
		{ "pin", required_argument, NULL, 'p' },
		{ "workload", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "objects", required_argument, NULL, 'o' },
		{ "objects-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->run.threads = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'h') {
			main_usage(stdout);
			return 1;
		}
		if (main_parse_option(o, c, optarg) != 0) {
			/* getopt and --workload report their own errors. */
			if (c != '?' && c != 'w')
				fprintf(stderr, "cmkbench: bad value '%s'\n",
					optarg);
			fprintf(stderr, "see cmkbench --help\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cmkbench: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	return main_check_opts(o) == 0 ? 0 : 2;
}

static int main_needs_objects(const struct main_opts *o)
{
	size_t k;

	for (k = 0; k < o->nwls; k++)
		if (o->wls[k]->flags & WL_NEEDS_OBJECTS)
			return 1;
	return 0;
}

/* The child reads the PIN from the environment, which keeps it out of
 * the process list. */
static int main_prepare_child(struct bench_env *env, struct child_cmd *cmd,
			      const struct main_opts *o)
{
	if (setenv("BENCH_PIN", o->pin, 1) != 0)
		return -1;
	if (child_cmd_build(cmd, o->module, o->slot.token_label,
			    o->slot.have_slot_id,
			    (unsigned long)o->slot.slot_id) != 0)
		return -1;
	env->child_argv = cmd->argv;
	return 0;
}

static int main_run_all(struct bench_env *env, const struct main_opts *o)
{
	int failed = 0;
	size_t k;
	long errors;

	for (k = 0; k < o->nwls; k++) {
		const struct workload *wl = o->wls[k];

		if (!env->initialized) {
			fprintf(stderr, "cmkbench: module not usable, "
					"stopping before %s\n", wl->name);
			return 1;
		}
		env->objects = (wl->flags & WL_NEEDS_OBJECTS) ? o->objects : 0;
		errors = run_workload(env, wl, &o->run);
		if (errors != 0)
			failed = 1;
	}
	return failed;
}

int main(int argc, char **argv)
{
	static struct child_cmd cmd;
	struct bench_env env;
	struct main_opts o;
	int rc;

	if (argc > 1 && strcmp(argv[1], CHILD_MODE_ARG) == 0)
		return child_find_sign_main(argc, argv);
	rc = main_parse(argc, argv, &o);
	if (rc != 0)
		return rc == 1 ? 0 : 2;
	memset(&env, 0, sizeof(env));
	if (main_prepare_child(&env, &cmd, &o) != 0 ||
	    env_open(&env, o.module, &o.slot, o.pin) != 0)
		return 1;
	rc = 0;
	if (o.objects && main_needs_objects(&o) &&
	    keys_objects_ensure(env.fn, env.session, o.objects,
				o.objects_level) != 0)
		rc = 1;
	if (rc == 0)
		rc = main_run_all(&env, &o);
	env_close(&env);
	return rc;
}
