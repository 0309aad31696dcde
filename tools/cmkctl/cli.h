/* cli.h - commands, their options, and the parsed command line. */
#ifndef CMKCTL_CLI_H
#define CMKCTL_CLI_H

#include <stddef.h>
#include <stdio.h>

#define OPT_REQUIRED 1u
#define OPT_REPEAT 2u /* may be given more than once; every value is kept */

struct opt_def {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* NULL: a flag that takes no value */
    unsigned flags;
    const char *help;
};

struct ctl;

struct cmd_def {
    const char *name;
    const char *summary; /* one line for `cmkctl --help` */
    const char *details; /* what it does in PKCS#11 terms; may be NULL */
    const char *example;
    const struct opt_def *opts; /* ends with an entry whose name is NULL */
    int (*run)(struct ctl *ctl);
};

#define ARGS_MAX_OPTS 24

struct args {
    const struct opt_def *defs;
    struct {
        size_t count;
        const char **values;
    } slot[ARGS_MAX_OPTS];
};

/* Every command, in the order `cmkctl --help` lists them; NULL-terminated. */
extern const struct cmd_def *const cli_commands[];
extern const struct opt_def cli_global_opts[];

/* Fills ctl->cmd, ctl->args and ctl->global. Returns 0, or an exit code with ctl->err set.
 * ctl->cmd stays NULL when only global options (--help, --version) were given. */
int cli_parse(struct ctl *ctl, int argc, char **argv);
void cli_args_free(struct args *a);

void cli_help_main(FILE *out);
void cli_help_command(FILE *out, const struct cmd_def *cmd);
const struct cmd_def *cli_find_command(const char *name);

/* The value of an option, NULL when absent (the last one for OPT_REPEAT options). */
const char *arg_str(const struct args *a, const char *name);
int arg_flag(const struct args *a, const char *name);
/* Every value of an OPT_REPEAT option, in command-line order. */
size_t arg_list(const struct args *a, const char *name, const char *const **values);

#endif
