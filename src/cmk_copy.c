/* cmk_copy.c - see cmk_copy.h. The table maps a copy handle to its session and its key;
 * every lookup copies the key handle out under the lock, so a copy destroyed or a session
 * closed by another thread meanwhile leaves the caller with the key's handle, which the
 * key's own checks then judge (no pointer into the table ever leaves it). */
#include "cmk_copy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmk.h"
#include "handles.h"
#include "log.h"
#include "template.h"

struct copy {
    CK_OBJECT_HANDLE handle; /* the copy's own (handle_is_copy) */
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key; /* the key's own object handle (version 0) */
};

static struct copy *copies;
static size_t ncopies, capacity;
static uint32_t next_id; /* 30 bits of handle: ids wrap only after a billion copies */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define COPY_ID_MASK 0x3FFFFFFFUL

/* A fresh handle no live copy has (under the lock). */
static CK_OBJECT_HANDLE fresh_handle(void)
{
    for (;;) {
        next_id = (next_id + 1) & COPY_ID_MASK;
        if (next_id == 0) continue;
        CK_OBJECT_HANDLE h = 0xC0000000UL | next_id;
        bool taken = false;
        for (size_t i = 0; i < ncopies && !taken; i++)
            taken = copies[i].handle == h;
        if (!taken) return h;
    }
}

static CK_RV add(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, CK_OBJECT_HANDLE *out)
{
    pthread_mutex_lock(&lock);
    if (ncopies == capacity) {
        size_t cap = capacity ? capacity * 2 : 16;
        struct copy *grown = realloc(copies, cap * sizeof(*grown));
        if (!grown) {
            pthread_mutex_unlock(&lock);
            return CKR_HOST_MEMORY;
        }
        copies = grown;
        capacity = cap;
    }
    CK_OBJECT_HANDLE h = fresh_handle();
    copies[ncopies++] = (struct copy){h, session, key};
    pthread_mutex_unlock(&lock);
    *out = h;
    return CKR_OK;
}

/* Only CKA_TOKEN=FALSE may be asked of the copy: it is the key, whose attributes change on
 * the key. (A token copy, a second key outside the CMK's lifecycle, is refused before.) */
static CK_RV check_template(const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
    for (CK_ULONG i = 0; i < count; i++) {
        if (tmpl[i].type == CKA_TOKEN) continue; /* FALSE: cmk_copy_make refused TRUE */
        log_warning("C_CopyObject: a session copy of a CMK is the key under a session "
                    "handle: attribute 0x%lx cannot differ from the key's",
                    tmpl[i].type);
        return CKR_ATTRIBUTE_READ_ONLY;
    }
    return CKR_OK;
}

CK_RV cmk_copy_make(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG count, CK_OBJECT_HANDLE *copy)
{
    /* A copy of a copy is one more copy of the key. */
    CK_RV rv = cmk_copy_resolve(session, &key);
    if (rv == CKR_OK) rv = cmk_object_exists(session, key);
    if (rv != CKR_OK) return rv;
    /* PKCS#11's default for a copy is the source's CKA_TOKEN, TRUE for a CMK. */
    bool token = true;
    attr_get_bool(tmpl, count, CKA_TOKEN, &token);
    if (token) {
        log_warning("C_CopyObject: a CMK cannot be copied into the token (a second key "
                    "outside its lifecycle); a session copy (CKA_TOKEN=FALSE) can");
        return CKR_ACTION_PROHIBITED;
    }
    if ((rv = check_template(tmpl, count)) != CKR_OK) return rv;
    if (handle_version(key) != 0) {
        log_warning("C_CopyObject: a version object cannot be copied; copy the key");
        return CKR_ACTION_PROHIBITED;
    }
    return add(session, key, copy);
}

CK_RV cmk_copy_resolve(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *handle)
{
    if (!handle_is_copy(*handle)) return CKR_OK;
    CK_RV rv = CKR_OBJECT_HANDLE_INVALID;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < ncopies; i++) {
        if (copies[i].handle == *handle && copies[i].session == session) {
            *handle = copies[i].key;
            rv = CKR_OK;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return rv;
}

/* Removes entries matching (session, handle); handle 0 matches every handle, and
 * all_sessions every session. True when one went. */
static bool remove_matching(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE handle, bool all_sessions)
{
    bool removed = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < ncopies;) {
        bool match = (all_sessions || copies[i].session == session) &&
                     (!handle || copies[i].handle == handle);
        if (match) {
            copies[i] = copies[--ncopies];
            removed = true;
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&lock);
    return removed;
}

CK_RV cmk_copy_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE copy)
{
    return remove_matching(session, copy, false) ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

CK_RV cmk_copy_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE copy,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
    CK_OBJECT_HANDLE key = copy;
    CK_RV rv = cmk_copy_resolve(session, &key);
    if (rv != CKR_OK) return rv;
    rv = cmk_get_attributes(session, key, tmpl, count);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
        rv != CKR_BUFFER_TOO_SMALL)
        return rv;
    for (CK_ULONG i = 0; i < count; i++) {
        if (tmpl[i].type != CKA_TOKEN) continue;
        if (tmpl[i].pValue && tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
            tmpl[i].ulValueLen >= sizeof(CK_BBOOL))
            *(CK_BBOOL *)tmpl[i].pValue = CK_FALSE;
    }
    return rv;
}

/* Does the key, seen as the copy (CKA_TOKEN FALSE), hold every value of the template? */
static bool copy_matches(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const CK_ATTRIBUTE *t,
                         CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type == CKA_TOKEN) {
            bool token = true;
            if (attr_get_bool(&t[i], 1, CKA_TOKEN, &token) != ATTR_PRESENT || token) return false;
            continue;
        }
        unsigned char stack[1024];
        CK_ATTRIBUTE have = {t[i].type, stack, sizeof(stack)};
        if (cmk_get_attributes(session, key, &have, 1) != CKR_OK ||
            have.ulValueLen != t[i].ulValueLen ||
            (have.ulValueLen && memcmp(stack, t[i].pValue, have.ulValueLen)))
            return false;
    }
    return true;
}

CK_RV cmk_copy_find(CK_SESSION_HANDLE session, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                    CK_OBJECT_HANDLE **out, CK_ULONG *found)
{
    *out = NULL;
    *found = 0;
    if (tmpl_has_vendor(tmpl, count)) return CKR_OK;
    /* The session's copies, copied out: matching calls into the key's records. */
    pthread_mutex_lock(&lock);
    if (ncopies == 0) { /* the common case: no allocation on a find */
        pthread_mutex_unlock(&lock);
        return CKR_OK;
    }
    struct copy *mine = malloc(ncopies * sizeof(*mine));
    size_t n = 0;
    for (size_t i = 0; mine && i < ncopies; i++)
        if (copies[i].session == session) mine[n++] = copies[i];
    pthread_mutex_unlock(&lock);
    if (!mine) return CKR_HOST_MEMORY;
    CK_OBJECT_HANDLE *list = malloc((n ? n : 1) * sizeof(*list));
    if (!list) {
        free(mine);
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < n; i++)
        if (copy_matches(session, mine[i].key, tmpl, count)) list[(*found)++] = mine[i].handle;
    free(mine);
    *out = list;
    return CKR_OK;
}

void cmk_copy_forget_session(CK_SESSION_HANDLE session) { remove_matching(session, 0, false); }

void cmk_copy_forget_all(void) { remove_matching(0, 0, true); }

void cmk_copy_at_fork(enum fork_phase p) { fork_phase_mutex(&lock, p); }
