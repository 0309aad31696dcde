/* ctl.h - the state of one cmkctl run, shared by every command. */
#ifndef CMKCTL_CTL_H
#define CMKCTL_CTL_H

#include <json-c/json.h>

#include "cli.h"
#include "errors.h"
#include "p11.h"

enum output_format { OUTPUT_JSON, OUTPUT_TABLE };

struct ctl {
    const struct cmd_def *cmd;
    struct args global; /* options valid for every command */
    struct args args;   /* the command's own options */
    int help_topic_pending;
    enum output_format output;
    struct p11 p11;
    char request_id[37];
    struct ctl_error err;
    json_object *module_log; /* modlog.h: the module's lines of a failed run, for the error */
};

/* Records an error on ctl and returns its exit code. */
#define ctl_fail(ctl, code, ...) err_set(&(ctl)->err, (code), __VA_ARGS__)

/* A module failure with the generic mapping; what names the call that failed. */
int ctl_fail_rv(struct ctl *ctl, CK_RV rv, const char *what);

#endif
