/* fuzz_config.c - libFuzzer harness for the cmkp11.conf parser (src/config.c + inih).
 *
 * Each input is written to one temporary file (made once under /tmp, overwritten on
 * every run) and loaded with config_load_file, then config_free. Log lines go to
 * /dev/null. An accepted configuration is checked against the documented ranges. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "config.h"
#include "log.h"

static char conf_path[64];

static void remove_conf(void)
{
    if (conf_path[0]) unlink(conf_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (log_use_stream(fopen("/dev/null", "w")) != 0) abort();
    log_threshold = LOG_LEVEL_DEBUG;
    snprintf(conf_path, sizeof(conf_path), "/tmp/cmkp11-fuzz-config.XXXXXX");
    int fd = mkstemp(conf_path);
    if (fd < 0) {
        perror("fuzz_config: mkstemp");
        abort();
    }
    close(fd);
    atexit(remove_conf);
    return 0;
}

static void check_loaded(const struct config *cfg)
{
    CHECK(cfg->path && strcmp(cfg->path, conf_path) == 0);
    CHECK(cfg->backend_module && cfg->store_path);
    CHECK(cfg->backend_token_label || cfg->backend_token_serial);
    CHECK(cfg->token_label);
    size_t label = strlen(cfg->token_label);
    CHECK(label >= 1 && label <= 32);
    /* Relative paths are made relative to the file's folder (/tmp). */
    CHECK(cfg->backend_module[0] == '/');
    CHECK(cfg->store_path[0] == '/');
    if (cfg->log_file) CHECK(cfg->log_file[0] == '/');
    CHECK(cfg->log_level >= LOG_LEVEL_ERROR && cfg->log_level <= LOG_LEVEL_DEBUG);
    CHECK(cfg->pending_window_days >= 7 && cfg->pending_window_days <= 1096);
    CHECK(cfg->usage_conflict == USAGE_CONFLICT_PREFER_SIGN ||
          cfg->usage_conflict == USAGE_CONFLICT_REJECT ||
          cfg->usage_conflict == USAGE_CONFLICT_HONOUR);
    CHECK(cfg->max_keys <= 100000000UL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(conf_path, "we");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();

    struct config cfg;
    memset(&cfg, 0x5A, sizeof(cfg)); /* config_load_file must not read what was there */
    int rv = config_load_file(&cfg, conf_path);
    if (rv == 0)
        check_loaded(&cfg);
    else
        CHECK(rv == -1);
    config_free(&cfg);
    return 0;
}
