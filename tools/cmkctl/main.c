/* main.c - cmkctl: parse, run one command, report. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "modlog.h"
#include "output.h"
#include "progress.h"

static int choose_output(struct ctl *ctl)
{
    const char *o = arg_str(&ctl->global, "output");
    if (!o || !strcasecmp(o, "json"))
        ctl->output = OUTPUT_JSON;
    else if (!strcasecmp(o, "table") || !strcasecmp(o, "text"))
        ctl->output = OUTPUT_TABLE;
    else
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--output must be json or table, not '%s'", o);
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl ctl;
    memset(&ctl, 0, sizeof(ctl));
    modlog_begin();
    out_uuid4(ctl.request_id);
    int rc = cli_parse(&ctl, argc, argv);
    int out_rc = choose_output(&ctl); /* even after a parse error: it decides the error's form */
    if (!rc) rc = out_rc;
    if (rc) goto out;
    if (arg_flag(&ctl.global, "version")) {
        printf("cmkctl %s\n", CMKCTL_VERSION);
    } else if (arg_flag(&ctl.global, "help") || ctl.help_topic_pending) {
        if (ctl.cmd)
            cli_help_command(stdout, ctl.cmd);
        else
            cli_help_main(stdout);
    } else if (!ctl.cmd) {
        rc = ctl_fail(&ctl, KMS_INVALID_ACTION, "no command given (see cmkctl --help)");
    } else {
        rc = ctl.cmd->run(&ctl);
    }
out:
    progress_clear();
    p11_close(&ctl.p11); /* the module's last lines are its own too */
    ctl.module_log = modlog_end(&ctl, rc != 0);
    if (rc && ctl.err.set) out_error(&ctl);
    json_object_put(ctl.module_log);
    cli_args_free(&ctl.global);
    cli_args_free(&ctl.args);
    return rc;
}
