/* cli.c - command-line parsing and the help texts, both driven by the option tables
 * each command declares, so an option cannot exist without being documented. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "ctl.h"

extern const struct cmd_def cmd_create_key, cmd_describe_key, cmd_list_keys, cmd_list_aliases,
    cmd_update_alias, cmd_create_alias, cmd_delete_alias, cmd_update_key_description, cmd_enable_key, cmd_disable_key,
    cmd_schedule_key_deletion, cmd_cancel_key_deletion, cmd_purge_due, cmd_enable_key_rotation,
    cmd_disable_key_rotation, cmd_rotate_key, cmd_rotate_due, cmd_list_key_versions,
    cmd_tag_resource, cmd_untag_resource, cmd_get_public_key, cmd_encrypt, cmd_decrypt, cmd_sign,
    cmd_verify, cmd_audit_log, cmd_doctor, cmd_get_parameters_for_import,
    cmd_import_key_material, cmd_delete_imported_key_material, cmd_generate_data_key,
    cmd_generate_data_key_without_plaintext, cmd_generate_random, cmd_re_encrypt, cmd_generate_mac,
    cmd_verify_mac, cmd_get_key_rotation_status, cmd_list_resource_tags, cmd_init;

const struct cmd_def *const cli_commands[] = {
    &cmd_create_key,
    &cmd_describe_key,
    &cmd_list_keys,
    &cmd_list_aliases,
    &cmd_create_alias,
    &cmd_update_alias,
    &cmd_delete_alias,
    &cmd_update_key_description,
    &cmd_enable_key,
    &cmd_disable_key,
    &cmd_schedule_key_deletion,
    &cmd_cancel_key_deletion,
    &cmd_purge_due,
    &cmd_enable_key_rotation,
    &cmd_disable_key_rotation,
    &cmd_rotate_key,
    &cmd_rotate_due,
    &cmd_list_key_versions,
    &cmd_get_key_rotation_status,
    &cmd_get_parameters_for_import,
    &cmd_import_key_material,
    &cmd_delete_imported_key_material,
    &cmd_tag_resource,
    &cmd_untag_resource,
    &cmd_list_resource_tags,
    &cmd_get_public_key,
    &cmd_encrypt,
    &cmd_decrypt,
    &cmd_re_encrypt,
    &cmd_generate_data_key,
    &cmd_generate_data_key_without_plaintext,
    &cmd_generate_random,
    &cmd_generate_mac,
    &cmd_verify_mac,
    &cmd_sign,
    &cmd_verify,
    &cmd_audit_log,
    &cmd_doctor,
    &cmd_init,
    NULL,
};

const struct opt_def cli_global_opts[] = {
    {"module", "PATH", 0,
     "PKCS#11 module to load (default: $CMKP11_MODULE, else " CMKCTL_DEFAULT_MODULE ")"},
    {"token", "LABEL", 0, "token to open, by label (default: the first slot with a token)"},
    {"pin-file", "PATH", 0, "read the user PIN from the first line of PATH"},
    {"pin", "PIN", 0,
     "user PIN on the command line (visible in `ps`: prefer --pin-file or $CMKP11_PIN)"},
    {"output", "FORMAT", 0, "json (default) or table"},
    {"help", NULL, 0, "show help (for the command, when one is named)"},
    {"version", NULL, 0, "show the version"},
    {NULL, NULL, 0, NULL},
};

const struct cmd_def *cli_find_command(const char *name)
{
    for (size_t i = 0; cli_commands[i]; i++)
        if (!strcmp(cli_commands[i]->name, name)) return cli_commands[i];
    return NULL;
}

static int opt_index(const struct opt_def *defs, const char *name, size_t len)
{
    for (int i = 0; defs && defs[i].name; i++)
        if (strlen(defs[i].name) == len && !strncmp(defs[i].name, name, len)) return i;
    return -1;
}

static int args_add(struct args *a, int i, const char *value)
{
    const char **grown = realloc(a->slot[i].values, (a->slot[i].count + 1) * sizeof(*grown));
    if (!grown) return -1;
    grown[a->slot[i].count++] = value;
    a->slot[i].values = grown;
    return 0;
}

/* Handles one "--name[=value]" at argv[*k]; advances *k past a separate value. */
static int parse_option(struct ctl *ctl, int argc, char **argv, int *k)
{
    const char *arg = argv[*k] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    struct args *target = &ctl->global;
    int i = opt_index(cli_global_opts, arg, len);
    if (i < 0 && ctl->cmd) {
        target = &ctl->args;
        i = opt_index(ctl->cmd->opts, arg, len);
    }
    if (i < 0) {
        if (ctl->cmd)
            return err_set(&ctl->err, KMS_INVALID_PARAMETER,
                           "unknown option --%.*s for %s (see cmkctl %s --help)", (int)len, arg,
                           ctl->cmd->name, ctl->cmd->name);
        return err_set(&ctl->err, KMS_INVALID_PARAMETER,
                       "unknown option --%.*s (options of a command go after its name; see "
                       "cmkctl --help)",
                       (int)len, arg);
    }
    const struct opt_def *def = &target->defs[i];
    const char *value = NULL;
    if (def->metavar) {
        if (eq)
            value = eq + 1;
        else if (*k + 1 < argc)
            value = argv[++*k];
        else
            return err_set(&ctl->err, KMS_MISSING_PARAMETER, "option --%s needs a value (%s)",
                           def->name, def->metavar);
    } else if (eq) {
        return err_set(&ctl->err, KMS_INVALID_PARAMETER, "option --%s takes no value", def->name);
    } else {
        value = "";
    }
    if (target->slot[i].count > 0 && !(def->flags & OPT_REPEAT))
        return err_set(&ctl->err, KMS_INVALID_PARAMETER, "option --%s given more than once",
                       def->name);
    if (args_add(target, i, value)) return err_set(&ctl->err, KMS_INTERNAL, "out of memory");
    return 0;
}

int cli_parse(struct ctl *ctl, int argc, char **argv)
{
    ctl->global.defs = cli_global_opts;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            int rc = parse_option(ctl, argc, argv, &k);
            if (rc) return rc;
        } else if (!ctl->cmd && !ctl->help_topic_pending && !strcmp(a, "help")) {
            ctl->help_topic_pending = 1; /* `cmkctl help [command]` */
        } else if (!ctl->cmd) {
            ctl->cmd = cli_find_command(a);
            if (!ctl->cmd)
                return err_set(&ctl->err, KMS_INVALID_ACTION,
                               "unknown command '%s' (see cmkctl --help)", a);
            ctl->args.defs = ctl->cmd->opts;
        } else {
            return err_set(&ctl->err, KMS_INVALID_PARAMETER,
                           "unexpected argument '%s': %s takes options only (see cmkctl %s "
                           "--help)",
                           a, ctl->cmd->name, ctl->cmd->name);
        }
    }
    if (ctl->help_topic_pending || arg_flag(&ctl->global, "help") || !ctl->cmd) return 0;
    for (int i = 0; ctl->cmd->opts[i].name; i++)
        if ((ctl->cmd->opts[i].flags & OPT_REQUIRED) && ctl->args.slot[i].count == 0)
            return err_set(&ctl->err, KMS_MISSING_PARAMETER, "%s needs --%s %s", ctl->cmd->name,
                           ctl->cmd->opts[i].name,
                           ctl->cmd->opts[i].metavar ? ctl->cmd->opts[i].metavar : "");
    return 0;
}

void cli_args_free(struct args *a)
{
    for (int i = 0; i < ARGS_MAX_OPTS; i++)
        free(a->slot[i].values);
}

static int find_slot(const struct args *a, const char *name)
{
    return a->defs ? opt_index(a->defs, name, strlen(name)) : -1;
}

const char *arg_str(const struct args *a, const char *name)
{
    int i = find_slot(a, name);
    if (i < 0 || a->slot[i].count == 0) return NULL;
    return a->slot[i].values[a->slot[i].count - 1];
}

int arg_flag(const struct args *a, const char *name)
{
    int i = find_slot(a, name);
    return i >= 0 && a->slot[i].count > 0;
}

size_t arg_list(const struct args *a, const char *name, const char *const **values)
{
    int i = find_slot(a, name);
    if (i < 0) {
        *values = NULL;
        return 0;
    }
    *values = a->slot[i].values;
    return a->slot[i].count;
}

/* Help lines stay within 100 columns: long descriptions wrap under their column. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
    int col = indent;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > indent && col + 1 + (int)word > width) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, text);
        col += (int)word;
        text += word;
        while (*text == ' ')
            text++;
    }
    fputc('\n', out);
}

static void print_opts(FILE *out, const struct opt_def *defs)
{
    for (int i = 0; defs[i].name; i++) {
        char left[64], help[512];
        snprintf(left, sizeof(left), "--%s%s%s", defs[i].name, defs[i].metavar ? " " : "",
                 defs[i].metavar ? defs[i].metavar : "");
        snprintf(help, sizeof(help), "%s%s%s", defs[i].help,
                 defs[i].flags & OPT_REQUIRED ? " (required)" : "",
                 defs[i].flags & OPT_REPEAT ? " (repeatable)" : "");
        fprintf(out, "  %-30s ", left);
        if (strlen(left) > 30) fprintf(out, "\n%33s", "");
        print_wrapped(out, help, 33, 100);
    }
}

void cli_help_main(FILE *out)
{
    fprintf(out, "usage: cmkctl [global options] COMMAND [options]\n\n"
                 "Manage customer master keys (CMKs) in a cmkp11 token with the vocabulary of "
                 "cloud KMS.\n\nCommands:\n");
    for (size_t i = 0; cli_commands[i]; i++)
        fprintf(out, "  %-24s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
    fprintf(out, "\nGlobal options (anywhere on the line):\n");
    print_opts(out, cli_global_opts);
    fprintf(out, "\nA key (--key-id) is named by its key id, its alias (with or without 'alias/'), "
                 "or a pkcs11: URI\n(object= and/or id=).\n"
                 "PIN: --pin-file, else $CMKP11_PIN, else a prompt when stdin is a terminal.\n"
                 "Output: JSON on stdout; errors as JSON {\"Error\":{\"Code\",\"Message\"}} on "
                 "stderr.\nExit codes: 0 ok, 1 negative answer (invalid signature, unhealthy "
                 "doctor), 2 invalid\nparameter, 3 key not found, 4 state or unsupported, 5 "
                 "unauthorized, 6 module/backend/\nstore failure, 7 limit exceeded.\n\n"
                 "Run `cmkctl COMMAND --help` for the options of a command.\n");
}

void cli_help_command(FILE *out, const struct cmd_def *cmd)
{
    fprintf(out, "usage: cmkctl %s [options]\n\n%s\n", cmd->name, cmd->summary);
    if (cmd->details) fprintf(out, "\n%s\n", cmd->details);
    if (cmd->opts[0].name) {
        fprintf(out, "\nOptions:\n");
        print_opts(out, cmd->opts);
    }
    fprintf(out, "\nGlobal options: --module PATH, --token LABEL, --pin-file PATH, --pin PIN, "
                 "--output json|table\n");
    if (cmd->example) fprintf(out, "\nExample:\n  %s\n", cmd->example);
}
