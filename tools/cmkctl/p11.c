/* p11.c - loading the module, choosing the token, the session, and attribute access. */
#include "p11.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "pin.h"

int ctl_fail_rv(struct ctl *ctl, CK_RV rv, const char *what)
{
    char buf[32];
    return ctl_fail(ctl, err_code_for_rv(rv), "%s failed: %s", what, ckr_name(rv, buf));
}

const char *p11_module_path(struct ctl *ctl)
{
    const char *m = arg_str(&ctl->global, "module");
    if (!m || !*m) m = getenv("CMKP11_MODULE");
    if (!m || !*m) m = CMKCTL_DEFAULT_MODULE;
    return m;
}

int p11_load(struct ctl *ctl)
{
    struct p11 *p = &ctl->p11;
    if (p->initialized) return 0;
    const char *path = p11_module_path(ctl);
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl)
        return ctl_fail(ctl, KMS_INTERNAL, "cannot load PKCS#11 module %s: %s", path, dlerror());
    CK_C_GetFunctionList get_list;
    *(void **)&get_list = dlsym(p->dl, "C_GetFunctionList");
    if (!get_list)
        return ctl_fail(ctl, KMS_INTERNAL, "%s is not a PKCS#11 module (no C_GetFunctionList)",
                        path);
    CK_RV rv = get_list(&p->fn);
    if (rv != CKR_OK || !p->fn)
        return ctl_fail_rv(ctl, rv ? rv : CKR_GENERAL_ERROR, "C_GetFunctionList");
    CK_C_INITIALIZE_ARGS init = {0};
    init.flags = CKF_OS_LOCKING_OK;
    rv = p->fn->C_Initialize(&init);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        char buf[32];
        return ctl_fail(ctl, KMS_INTERNAL,
                        "C_Initialize of %s failed: %s (cmkp11: check the file named by "
                        "CMKP11_CONF, the backend token, the store, and the module log)",
                        path, ckr_name(rv, buf));
    }
    p->initialized = 1;
    return 0;
}

static void trim_label(const CK_UTF8CHAR label[32], char out[33])
{
    memcpy(out, label, 32);
    out[32] = '\0';
    for (int i = 31; i >= 0 && (out[i] == ' ' || out[i] == '\0'); i--)
        out[i] = '\0';
}

/* Failures SoftHSMv2's file store gives now and then while another process rewrites the
 * token's files; cmkp11 forwards them. Once one has happened, that process's view of the
 * token may stay broken (every C_Login then fails), so p11_open starts over. */
static int transient(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR || rv == CKR_FUNCTION_FAILED;
}

static int choose_token(struct ctl *ctl, CK_FLAGS *token_flags)
{
    struct p11 *p = &ctl->p11;
    const char *want = arg_str(&ctl->global, "token");
    CK_ULONG n = 0;
    CK_RV rv = p->fn->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) return ctl_fail_rv(ctl, rv, "C_GetSlotList");
    CK_SLOT_ID *slots = calloc(n ? n : 1, sizeof(*slots));
    if (!slots) return ctl_fail(ctl, KMS_INTERNAL, "out of memory");
    rv = p->fn->C_GetSlotList(CK_TRUE, slots, &n);
    int found = 0;
    CK_RV info_rv = CKR_OK;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n && !found; i++) {
        CK_TOKEN_INFO info;
        CK_RV r = p->fn->C_GetTokenInfo(slots[i], &info);
        if (r != CKR_OK) {
            info_rv = r;
            continue;
        }
        char label[33];
        trim_label(info.label, label);
        if (!want || !strcmp(label, want)) {
            found = 1;
            p->slot = slots[i];
            memcpy(p->token_label, label, sizeof(label));
            *token_flags = info.flags;
        }
    }
    free(slots);
    if (rv != CKR_OK) return ctl_fail_rv(ctl, rv, "C_GetSlotList");
    if (!found) {
        char buf[32];
        if (info_rv != CKR_OK) {
            p->transient = transient(info_rv);
            return ctl_fail(ctl, KMS_INTERNAL, "C_GetTokenInfo failed: %s%s (module %s)",
                            ckr_name(info_rv, buf), want ? ", and no other token matched" : "",
                            p11_module_path(ctl));
        }
        if (want)
            return ctl_fail(ctl, KMS_INTERNAL, "no token labelled '%s' in %s", want,
                            p11_module_path(ctl));
        return ctl_fail(ctl, KMS_INTERNAL, "no token present in %s", p11_module_path(ctl));
    }
    return 0;
}

/* The PIN is read once per run, however often the login is tried: --pin is wiped from the
 * command line after the first read, and a prompt must not come twice. */
struct held_pin {
    char *pin;
    size_t len;
};

static int login(struct ctl *ctl, CK_FLAGS token_flags, struct held_pin *held)
{
    struct p11 *p = &ctl->p11;
    CK_RV rv;
    if ((token_flags & CKF_PROTECTED_AUTHENTICATION_PATH) && !arg_str(&ctl->global, "pin-file") &&
        !arg_str(&ctl->global, "pin") && !getenv("CMKP11_PIN")) {
        rv = p->fn->C_Login(p->session, CKU_USER, NULL, 0); /* the reader's own PIN pad */
    } else {
        if (!held->pin) {
            int rc = pin_get(ctl, p->token_label, &held->pin, &held->len);
            if (rc) return rc;
        }
        rv = p->fn->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)held->pin, (CK_ULONG)held->len);
    }
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return 0;
    p->transient = transient(rv);
    char buf[32];
    return ctl_fail(ctl, err_code_for_rv(rv) == KMS_INTERNAL ? KMS_INTERNAL : KMS_UNAUTHORIZED,
                    "login to token '%s' failed: %s", p->token_label, ckr_name(rv, buf));
}

static int open_once(struct ctl *ctl, int want_login, struct held_pin *held)
{
    struct p11 *p = &ctl->p11;
    int rc = p11_load(ctl);
    CK_FLAGS flags = 0;
    if (!rc) rc = choose_token(ctl, &flags);
    if (rc) return rc;
    CK_RV rv =
        p->fn->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->session);
    if (rv != CKR_OK) {
        p->transient = transient(rv);
        return ctl_fail_rv(ctl, rv, "C_OpenSession");
    }
    p->has_session = 1;
    return want_login ? login(ctl, flags, held) : 0;
}

#define OPEN_ATTEMPTS 3

int p11_open(struct ctl *ctl, int want_login)
{
    if (ctl->p11.has_session) return 0;
    struct held_pin held = {NULL, 0};
    int rc = 0;
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
        if (attempt) {
            /* Start over: unload the module, forget the failure, wait a little. */
            p11_close(&ctl->p11);
            memset(&ctl->err, 0, sizeof(ctl->err));
            struct timespec pause = {0, 50000000L * attempt * attempt};
            nanosleep(&pause, NULL);
        }
        rc = open_once(ctl, want_login, &held);
        if (!rc || !ctl->p11.transient) break;
    }
    pin_free(held.pin, held.len);
    return rc;
}

void p11_close(struct p11 *p)
{
    if (p->has_session) p->fn->C_CloseSession(p->session);
    if (p->initialized) p->fn->C_Finalize(NULL);
    if (p->dl) dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}

CK_RV p11_find(struct p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out,
               CK_ULONG *count)
{
    *out = NULL;
    *count = 0;
    CK_RV rv = p->fn->C_FindObjectsInit(p->session, tmpl, n);
    if (rv != CKR_OK) return rv;
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG got;
    while ((rv = p->fn->C_FindObjects(p->session, batch, 64, &got)) == CKR_OK && got > 0) {
        CK_OBJECT_HANDLE *grown = realloc(*out, (*count + got) * sizeof(*grown));
        if (!grown) {
            rv = CKR_HOST_MEMORY;
            break;
        }
        memcpy(grown + *count, batch, got * sizeof(*grown));
        *out = grown;
        *count += got;
    }
    CK_RV fin = p->fn->C_FindObjectsFinal(p->session);
    if (rv == CKR_OK) rv = fin;
    if (rv != CKR_OK) {
        free(*out);
        *out = NULL;
        *count = 0;
    }
    return rv;
}

/* Two passes: sizes first, then values, so no attribute needs a guessed buffer. Attributes
 * the object lacks or hides only leave present = 0: a module without cmkp11's vendor
 * attributes still describes what it can. */
CK_RV p11_get_attrs(struct p11 *p, CK_OBJECT_HANDLE obj, struct attr_val *a, size_t n)
{
    CK_ATTRIBUTE *t = calloc(n ? n : 1, sizeof(*t));
    if (!t) return CKR_HOST_MEMORY;
    for (size_t i = 0; i < n; i++) {
        a[i].value = NULL;
        a[i].len = 0;
        a[i].present = 0;
        t[i].type = a[i].type;
    }
    CK_RV rv = p->fn->C_GetAttributeValue(p->session, obj, t, (CK_ULONG)n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) goto out;
    CK_ULONG m = 0;
    size_t *index = calloc(n ? n : 1, sizeof(*index));
    if (!index) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
        a[i].value = calloc(1, t[i].ulValueLen + 1);
        if (!a[i].value) {
            rv = CKR_HOST_MEMORY;
            free(index);
            goto out;
        }
        t[m].type = a[i].type;
        t[m].pValue = a[i].value;
        t[m].ulValueLen = t[i].ulValueLen;
        index[m++] = i;
    }
    rv = m ? p->fn->C_GetAttributeValue(p->session, obj, t, m) : CKR_OK;
    if (rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) {
        for (CK_ULONG k = 0; k < m; k++) {
            struct attr_val *v = &a[index[k]];
            if (t[k].ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
            v->len = t[k].ulValueLen;
            v->value[v->len] = '\0';
            v->present = 1;
        }
        rv = CKR_OK;
    }
    free(index);
out:
    free(t);
    if (rv != CKR_OK) p11_attrs_free(a, n);
    return rv;
}

void p11_attrs_free(struct attr_val *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].value);
        a[i].value = NULL;
        a[i].present = 0;
    }
}

const struct attr_val *attr_lookup(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].type == type && a[i].present) return &a[i];
    return NULL;
}

CK_ULONG attr_ulong(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
    const struct attr_val *v = attr_lookup(a, n, type);
    if (!v) return dflt;
    if (v->len == sizeof(CK_ULONG)) {
        CK_ULONG x;
        memcpy(&x, v->value, sizeof(x));
        return x;
    }
    if (v->len == sizeof(CK_BBOOL)) return v->value[0];
    return dflt;
}

const char *attr_text(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type)
{
    const struct attr_val *v = attr_lookup(a, n, type);
    return v ? (const char *)v->value : "";
}

CK_RV p11_set(struct p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    return p->fn->C_SetAttributeValue(p->session, obj, tmpl, n);
}

void tmpl_add(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
    if (t->n < TMPL_MAX) t->a[t->n++] = (CK_ATTRIBUTE){type, (void *)value, len};
}

void tmpl_add_bool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, int value)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    tmpl_add(t, type, value ? &yes : &no, sizeof(CK_BBOOL));
}
