/* input.c - see input.h. */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ctl.h"

/* At most max bytes of path; more is EFBIG, read no further than one byte past max. */
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
    if (b64 && b64_decode(b64, data, len))
        return ctl_fail(ctl, KMS_INVALID_PARAMETER, "--%s is not valid base64", name);
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
