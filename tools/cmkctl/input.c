/* input.c - see input.h. */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctl.h"

/* At most max bytes of path; more is EFBIG, read no further than one byte past max. The
 * buffer has room for max + 1 bytes. */
static int read_bounded(const char *path, size_t max, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n > max) {
        free(buf);
        errno = !buf ? ENOMEM : err ? EIO : EFBIG;
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int input_bytes(struct ctl *ctl, const char *name, size_t max, unsigned char **data, size_t *len)
{
    char file_opt[48];
    snprintf(file_opt, sizeof(file_opt), "%s-file", name);
    const char *b64 = arg_str(&ctl->args, name), *file = arg_str(&ctl->args, file_opt);
    *data = NULL;
    *len = 0;
    if (!!b64 == !!file)
        return ctl_fail(ctl, b64 ? KMS_INVALID_PARAMETER : KMS_MISSING_PARAMETER,
                        "give exactly one of --%s BASE64 and --%s FILE", name, file_opt);
    /* The AWS CLI's forms: fileb://PATH is the file's raw bytes (as --NAME-file), file://PATH
     * the file's text, read as the base64 the option takes. */
    unsigned char *text = NULL;
    size_t text_len = 0;
    if (b64 && !strncmp(b64, "fileb://", 8)) {
        file = b64 + 8;
        b64 = NULL;
    } else if (b64 && !strncmp(b64, "file://", 7)) {
        if (read_bounded(b64 + 7, 4 * max / 3 + 4096, &text, &text_len))
            return errno == EFBIG ? ctl_fail(ctl, KMS_INVALID_PARAMETER,
                                             "%s holds more base64 than --%s takes", b64 + 7, name)
                                  : ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot read %s: %m",
                                             b64 + 7);
        char *nul = realloc(text, text_len + 1);
        if (!nul) {
            free(text);
            return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
        }
        nul[text_len] = '\0';
        text = (unsigned char *)nul;
        b64 = nul;
    }
    int bad = b64 && b64_decode(b64, data, len);
    free(text);
    if (bad) return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--%s is not valid base64", name);
    if (file && read_bounded(file, max, data, len))
        return errno == EFBIG
                   ? ctl_fail(ctl, KMS_INVALID_PARAMETER,
                              "%s holds more than the %zu bytes --%s takes", file, max, file_opt)
                   : ctl_fail(ctl, KMS_INVALID_PARAMETER, "cannot read %s: %m", file);
    if (*len > max) {
        explicit_bzero(*data, *len);
        free(*data);
        *data = NULL;
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--%s is %zu bytes: it takes at most %zu", name,
                        *len, max);
    }
    return 0;
}
