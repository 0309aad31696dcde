/*
 * find-first-sign: a fresh process that loads the module, signs once and
 * exits, i.e. what a one-shot command line tool pays per invocation.
 */
#ifndef CMKBENCH_CHILD_H
#define CMKBENCH_CHILD_H

#include <limits.h>

#define CHILD_MODE_ARG "--child-find-sign"
#define CHILD_ARGV_MAX 8

/* Everything the parent needs to exec the child, built before any fork. */
struct child_cmd {
	char self[PATH_MAX];
	char slot[32];
	char *argv[CHILD_ARGV_MAX];
};

int child_find_sign_main(int argc, char **argv);
int child_cmd_build(struct child_cmd *cmd, const char *module_path,
		    const char *token_label, int have_slot,
		    unsigned long slot);
/* Returns the child's wait status, or -1 if it could not be started. */
int child_spawn_wait(char **argv);

#endif
