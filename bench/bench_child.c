/*
 * The re-executed child of find-first-sign, and the parent side that
 * starts and reaps it.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_child.h"
#include "bench_keys.h"
#include "bench_p11.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_SIG_MAX 256

struct child_opts {
	const char *module;
	struct p11_slot_choice slot;
};

static int child_opts_parse(int argc, char **argv, struct child_opts *o)
{
	int k;

	memset(o, 0, sizeof(*o));
	for (k = 1; k + 1 < argc; k++) {
		if (strcmp(argv[k], "--module") == 0) {
			o->module = argv[++k];
		} else if (strcmp(argv[k], "--token-label") == 0) {
			o->slot.token_label = argv[++k];
		} else if (strcmp(argv[k], "--slot") == 0) {
			o->slot.have_slot_id = 1;
			o->slot.slot_id = strtoul(argv[++k], NULL, 10);
		}
	}
	return o->module ? 0 : -1;
}

static int child_sign_once(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	unsigned char digest[32], sig[CHILD_SIG_MAX];
	CK_ULONG sig_len = sizeof(sig), n;
	CK_OBJECT_HANDLE key;
	CK_RV rv;

	if (p11_object_find_labelled(fn, s, CKO_PRIVATE_KEY, KEYS_LABEL_EC,
				     &key, &n) != CKR_OK)
		return -1;
	if (n == 0) {
		fprintf(stderr, "cmkbench: child: no key %s\n", KEYS_LABEL_EC);
		return -1;
	}
	memset(digest, 0x5a, sizeof(digest));
	rv = fn->C_SignInit(s, &mech, key);
	if (rv != CKR_OK) {
		p11_report("child", "C_SignInit", rv);
		return -1;
	}
	rv = fn->C_Sign(s, digest, sizeof(digest), sig, &sig_len);
	if (rv != CKR_OK) {
		p11_report("child", "C_Sign", rv);
		return -1;
	}
	return 0;
}

static int child_run(CK_FUNCTION_LIST_PTR fn, const struct child_opts *o,
		     const char *pin)
{
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (p11_slot_resolve(fn, &o->slot, &slot) != 0)
		return -1;
	rv = p11_session_open(fn, slot, &s);
	if (rv != CKR_OK) {
		p11_report("child", "C_OpenSession", rv);
		return -1;
	}
	rv = p11_session_login(fn, s, pin);
	if (rv != CKR_OK) {
		p11_report("child", "C_Login", rv);
		return -1;
	}
	return child_sign_once(fn, s);
}

int child_find_sign_main(int argc, char **argv)
{
	struct child_opts o;
	CK_FUNCTION_LIST_PTR fn;
	const char *pin = getenv("BENCH_PIN");
	void *dl;
	CK_RV rv;
	int rc;

	if (child_opts_parse(argc, argv, &o) != 0 || !pin) {
		fprintf(stderr, "cmkbench: child: bad arguments\n");
		return 2;
	}
	if (p11_module_load(o.module, &dl, &fn) != 0)
		return 1;
	rv = p11_module_initialize(fn);
	if (rv != CKR_OK) {
		p11_report("child", "C_Initialize", rv);
		return 1;
	}
	rc = child_run(fn, &o, pin);
	/* Finalize closes the session too, as a short-lived tool would. */
	rv = fn->C_Finalize(NULL);
	if (rv != CKR_OK) {
		p11_report("child", "C_Finalize", rv);
		rc = -1;
	}
	return rc == 0 ? 0 : 1;
}

/* The child is this very binary, found through /proc so that it works
 * whatever the current directory or PATH. */
int child_cmd_build(struct child_cmd *cmd, const char *module_path,
		    const char *token_label, int have_slot,
		    unsigned long slot)
{
	ssize_t len;
	int n = 0;

	memset(cmd, 0, sizeof(*cmd));
	len = readlink("/proc/self/exe", cmd->self, sizeof(cmd->self) - 1);
	if (len <= 0) {
		perror("cmkbench: readlink /proc/self/exe");
		return -1;
	}
	cmd->argv[n++] = cmd->self;
	cmd->argv[n++] = CHILD_MODE_ARG;
	cmd->argv[n++] = "--module";
	cmd->argv[n++] = (char *)module_path;
	if (token_label) {
		cmd->argv[n++] = "--token-label";
		cmd->argv[n++] = (char *)token_label;
	} else if (have_slot) {
		snprintf(cmd->slot, sizeof(cmd->slot), "%lu", slot);
		cmd->argv[n++] = "--slot";
		cmd->argv[n++] = cmd->slot;
	}
	return 0;
}

int child_spawn_wait(char **argv)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec: the
		 * parent may be multi-threaded. */
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}
