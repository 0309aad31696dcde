/* p11.h - the PKCS#11 module as cmkctl uses it: loaded with dlopen, one token, one
 * read/write session, logged in as the user. */
#ifndef CMKCTL_P11_H
#define CMKCTL_P11_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

#include "cmkp11/cmkp11.h"

struct ctl;

struct p11 {
    void *dl;
    CK_FUNCTION_LIST_PTR fn;
    int initialized;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int has_session;
    char token_label[33]; /* trimmed */
    int transient;        /* the last failure was one the backend may not repeat */
};

/* One attribute read from an object; value is NUL-terminated for convenience. */
struct attr_val {
    CK_ATTRIBUTE_TYPE type;
    unsigned char *value;
    CK_ULONG len;
    int present;
};

#define P11_NO_LOGIN 0
#define P11_LOGIN 1

/* Loads the module (--module, $CMKP11_MODULE, or the installed path), opens the token
 * and a session, and logs in when asked. Returns 0 or an exit code with ctl->err set.
 * A backend failure that may be passing (CKR_GENERAL_ERROR, CKR_DEVICE_ERROR,
 * CKR_FUNCTION_FAILED from C_GetTokenInfo, C_OpenSession or C_Login) is tried again from
 * the start, with the module reloaded; a refused PIN never is. */
int p11_open(struct ctl *ctl, int login);
/* Only dlopen, C_GetFunctionList and C_Initialize (part of p11_open; doctor checks it
 * alone). */
int p11_load(struct ctl *ctl);
const char *p11_module_path(struct ctl *ctl);
void p11_close(struct p11 *p);

/* All objects matching tmpl; *out is malloc'd (may be NULL when *count is 0). */
CK_RV p11_find(struct p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out,
               CK_ULONG *count);
/* Reads every attribute it can; absent or unreadable ones have present = 0. */
CK_RV p11_get_attrs(struct p11 *p, CK_OBJECT_HANDLE obj, struct attr_val *a, size_t n);
void p11_attrs_free(struct attr_val *a, size_t n);
const struct attr_val *attr_lookup(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type);
/* Value of a CK_ULONG attribute, or dflt when absent or of the wrong size. */
CK_ULONG attr_ulong(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt);
/* NUL-terminated text of an attribute, or "" when absent. */
const char *attr_text(const struct attr_val *a, size_t n, CK_ATTRIBUTE_TYPE type);

/* A template under construction; values point at the caller's storage. */
#define TMPL_MAX 32
struct tmpl {
    CK_ATTRIBUTE a[TMPL_MAX];
    CK_ULONG n;
};
void tmpl_add(struct tmpl *t, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len);
void tmpl_add_bool(struct tmpl *t, CK_ATTRIBUTE_TYPE type, int value);

CK_RV p11_set(struct p11 *p, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl, CK_ULONG n);

#endif
