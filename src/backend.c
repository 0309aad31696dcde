/* backend.c - loading the vendor module and the few lookups cmkp11 itself needs. */
#define _GNU_SOURCE /* dladdr: is the backend cmkp11 itself? */
#include "backend.h"
#include "backend_gate.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entry.h" /* entry_function_list: is the backend cmkp11 itself? */
#include "log.h"

void backend_field_to_string(const CK_UTF8CHAR *field, size_t len, char *out, size_t out_size)
{
    while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\0')) len--;
    if (len >= out_size) len = out_size - 1;
    memcpy(out, field, len);
    out[len] = '\0';
}

static CK_RV backend_find_slot(struct backend *be, const char *label, const char *serial)
{
    CK_ULONG count = 0;
    CK_RV rv = be->fn->C_GetSlotList(CK_TRUE, NULL, &count);
    if (rv != CKR_OK) return rv;
    CK_SLOT_ID *slots = calloc(count ? count : 1, sizeof(*slots));
    if (!slots) return CKR_HOST_MEMORY;
    rv = be->fn->C_GetSlotList(CK_TRUE, slots, &count);
    bool found = false;
    for (CK_ULONG i = 0; rv == CKR_OK && i < count && !found; i++) {
        CK_TOKEN_INFO info;
        if (be->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
        char have_label[33], have_serial[17];
        backend_field_to_string(info.label, sizeof(info.label), have_label, sizeof(have_label));
        backend_field_to_string(info.serialNumber, sizeof(info.serialNumber), have_serial,
                                sizeof(have_serial));
        if ((!label || !strcmp(label, have_label)) && (!serial || !strcmp(serial, have_serial))) {
            be->slot = slots[i];
            found = true;
        }
    }
    free(slots);
    if (rv != CKR_OK) return rv;
    return found ? CKR_OK : CKR_TOKEN_NOT_PRESENT;
}

/* The first function-list entry cmkp11 calls on the backend (backend_calls.def: directly,
 * or by forwarding an application's call) that the list leaves NULL; NULL when there is
 * none. PKCS#11 lets a module leave an entry it does not implement NULL, and a call
 * through it would crash the application mid-operation; checked once at C_Initialize
 * instead, so an incomplete backend is refused with its name in the log. C_GetInfo and
 * C_WaitForSlotEvent are never called on the backend; C_InitToken is checked where it is
 * called (a backend without it can still serve CMKs). */
static const char *missing_call(CK_FUNCTION_LIST_PTR fn)
{
#define BACKEND_CALL(name, params, args)                                                           \
    if (!fn->name && strcmp(#name, "C_GetInfo") && strcmp(#name, "C_WaitForSlotEvent") &&         \
        strcmp(#name, "C_InitToken"))                                                              \
        return #name;
#include "backend_calls.def"
#undef BACKEND_CALL
    return NULL;
}

/* Is the backend cmkp11 itself? Named as its own backend, cmkp11's C_Initialize would
 * run again from inside itself and wait forever: on its init lock when it is this very
 * object (its path, a symlink or a hard link: dlopen gives back the object already
 * loaded), on the token lock's flock (held across backend_open) when it is a copy of the
 * file, loaded as another object that reads the same configuration. The first is told
 * by the object the backend's C_Initialize lies in, the second by where the function
 * list and its C_Initialize lie within their object: a copy of this build puts them
 * exactly where we do, another module does not. A module that forwards to cmkp11 (a
 * p11-kit proxy listing it) is caught when it re-enters our C_Initialize
 * (module_initialize). Returns NULL, or how it is cmkp11. */
static const char *as_cmkp11(CK_FUNCTION_LIST_PTR fn)
{
    Dl_info ours, their_init, their_list, our_init;
    if (!dladdr((void *)backend_open, &ours) || !dladdr((void *)fn->C_Initialize, &their_init))
        return NULL;
    if (their_init.dli_fbase == ours.dli_fbase) return "";
    if (!dladdr((void *)fn, &their_list) || their_list.dli_fbase != their_init.dli_fbase ||
        !dladdr((void *)entry_function_list.C_Initialize, &our_init) ||
        our_init.dli_fbase != ours.dli_fbase)
        return NULL;
    const char *their_base = their_init.dli_fbase, *our_base = ours.dli_fbase;
    bool same_list = (const char *)fn - their_base == (const char *)&entry_function_list - our_base;
    bool same_init = (const char *)(void *)fn->C_Initialize - their_base ==
                     (const char *)(void *)entry_function_list.C_Initialize - our_base;
    return same_list && same_init ? " (a copy of its file)" : NULL;
}

CK_RV backend_open(struct backend *be, const char *path, const char *token_label,
                   const char *token_serial)
{
    memset(be, 0, sizeof(*be));
    /* RTLD_LOCAL keeps the vendor's symbols (often also named C_*) from shadowing ours. */
    be->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!be->dl) {
        log_error("backend module %s: cannot load: %s", path, dlerror());
        return CKR_GENERAL_ERROR;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(be->dl, "C_GetFunctionList");
    if (!get_list) {
        log_error("backend module %s: no C_GetFunctionList symbol", path);
        dlclose(be->dl);
        be->dl = NULL;
        return CKR_GENERAL_ERROR;
    }
    CK_RV rv = get_list(&be->fn);
    if (rv != CKR_OK || !be->fn) {
        log_error("backend module %s: C_GetFunctionList failed: 0x%lx%s", path, rv,
                  rv == CKR_OK ? " (it gave no function list)" : "");
        goto fail;
    }
    /* Nothing else is called before these checks (backend_find_slot included). A list
     * that is not one at all cannot be told in general; its version is a cheap sign. */
    if (be->fn->version.major != 2 && be->fn->version.major != 3) {
        log_error("backend module %s: its function list has version %u.%u; PKCS#11 2.x or 3.x "
                  "is needed",
                  path, be->fn->version.major, be->fn->version.minor);
        rv = CKR_GENERAL_ERROR;
        goto fail;
    }
    const char *missing = missing_call(be->fn);
    if (missing) {
        log_error("backend module %s: its function list has no %s, which cmkp11 calls",
                  path, missing);
        rv = CKR_GENERAL_ERROR;
        goto fail;
    }
    const char *self = as_cmkp11(be->fn);
    if (self) {
        log_error("backend module %s: is cmkp11 itself%s; [backend] module must name the "
                  "HSM's PKCS#11 module",
                  path, self);
        rv = CKR_GENERAL_ERROR;
        goto fail;
    }
    be->fn = backend_gate_wrap(be->fn); /* every call from here on: backend_gate.h */
    /* We call the backend from many threads; it must lock for itself. */
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    rv = be->fn->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        log_error("backend module %s: C_Initialize failed: 0x%lx", path, rv);
        goto fail;
    }
    /* Someone else in this process initialised it: they finalise it, not us. */
    be->owns_init = rv == CKR_OK;
    rv = backend_find_slot(be, token_label, token_serial);
    /* SoftHSMv2's file store rewrites token.object in place (on login, for example); a
     * process that starts at that moment does not see the token. Such a token comes
     * back within milliseconds, so look again for up to a second before giving up. */
    for (int tries = 0; rv == CKR_TOKEN_NOT_PRESENT && be->owns_init && tries < 40; tries++) {
        be->fn->C_Finalize(NULL);
        struct timespec pause = {0, 25 * 1000 * 1000};
        nanosleep(&pause, NULL);
        rv = be->fn->C_Initialize(&args);
        if (rv != CKR_OK) break;
        rv = backend_find_slot(be, token_label, token_serial);
        if (rv == CKR_OK) log_info("backend token '%s' found after %d retries", token_label, tries + 1);
    }
    if (rv != CKR_OK) {
        log_error("backend module %s: no token with label '%s'%s%s (0x%lx)", path,
                  token_label ? token_label : "(any)", token_serial ? " and serial " : "",
                  token_serial ? token_serial : "", rv);
        if (be->owns_init) be->fn->C_Finalize(NULL);
        goto fail;
    }
    return CKR_OK;

fail:
    dlclose(be->dl);
    memset(be, 0, sizeof(*be));
    return rv == CKR_OK ? CKR_GENERAL_ERROR : rv;
}

void backend_close(struct backend *be)
{
    if (be->fn && be->owns_init) be->fn->C_Finalize(NULL);
    if (be->dl) dlclose(be->dl);
    memset(be, 0, sizeof(*be));
}

void backend_reset_after_fork(struct backend *be)
{
    /* The child's copy of the backend believes in the parent's sessions and logins;
     * finalising it clears that copy (the parent's own state is untouched). The
     * library stays loaded: dlopen in backend_open takes another reference. */
    if (be->fn && be->owns_init) be->fn->C_Finalize(NULL);
    memset(be, 0, sizeof(*be));
}

bool backend_token_present(struct backend *be)
{
    /* SoftHSMv2 keeps saying the slot holds a token whose files are gone, and fails to
     * read its information; a rewrite by another process can fail that read too, for
     * milliseconds, so it is tried a few times. */
    for (int tries = 0; tries < 4; tries++) {
        CK_SLOT_INFO slot;
        CK_TOKEN_INFO token;
        if (be->fn->C_GetSlotInfo(be->slot, &slot) == CKR_OK &&
            (slot.flags & CKF_TOKEN_PRESENT) && be->fn->C_GetTokenInfo(be->slot, &token) == CKR_OK)
            return true;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    log_error("backend token in slot %lu is gone (removed, or its files moved away); "
              "C_Finalize and C_Initialize once it is back",
              be->slot);
    return false;
}

CK_RV backend_find(struct backend *be, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                   CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
    *count = 0;
    CK_RV rv = be->fn->C_FindObjectsInit(session, tmpl, n);
    if (rv != CKR_OK) return rv;
    rv = be->fn->C_FindObjects(session, out, max, count);
    CK_RV rv2 = be->fn->C_FindObjectsFinal(session);
    return rv != CKR_OK ? rv : rv2;
}

CK_RV backend_find_by_id(struct backend *be, CK_SESSION_HANDLE session, const void *id,
                         CK_ULONG len, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
                         CK_ULONG *count)
{
    CK_BBOOL token = CK_TRUE;
    /* Class first: SoftHSMv2 checks the template in order and stops at the first
     * mismatch, and a private object's CKA_ID must be decrypted to be compared while its
     * class is a plain number. A token full of AES CMKs then costs a private key's
     * lookup a quarter of what it did (405 M -> about 100 M instructions at 10,000). */
    CK_ATTRIBUTE tmpl[3] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_ID, (void *)id, len},
    };
    bool any_class = cls == (CK_OBJECT_CLASS)-1;
    return backend_find(be, session, any_class ? tmpl + 1 : tmpl, any_class ? 2 : 3, out, max,
                        count);
}

CK_RV backend_object_matches(struct backend *be, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                             const CK_ATTRIBUTE *tmpl, CK_ULONG n, int *matches)
{
    *matches = 1;
    for (CK_ULONG i = 0; i < n && *matches; i++) {
        /* One byte more than wanted: a longer value then fails as it should. */
        unsigned char stack[512];
        CK_ULONG size = tmpl[i].ulValueLen + 1;
        unsigned char *buf = size <= sizeof(stack) ? stack : malloc(size);
        if (!buf) return CKR_HOST_MEMORY;
        CK_ATTRIBUTE have = {tmpl[i].type, buf, size};
        CK_RV rv = be->fn->C_GetAttributeValue(session, h, &have, 1);
        *matches = rv == CKR_OK && have.ulValueLen == tmpl[i].ulValueLen &&
                   (tmpl[i].ulValueLen == 0 || memcmp(buf, tmpl[i].pValue, tmpl[i].ulValueLen) == 0);
        if (buf != stack) free(buf);
        if (rv == CKR_OBJECT_HANDLE_INVALID) return rv;
    }
    return CKR_OK;
}

bool backend_session_logged_in(const struct backend *be, CK_SESSION_HANDLE session)
{
    CK_SESSION_INFO info;
    return be->fn->C_GetSessionInfo(session, &info) == CKR_OK &&
           (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS);
}
