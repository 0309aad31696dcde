/* vendor_op.h - cryptographic operations cmkp11 runs itself rather than forwarding:
 * the envelope mechanism, AES-GCM decrypt that falls back to older key versions, and
 * every operation on a SOFTWARE key (run in-process, see soft_crypt.h), and the SM3
 * digest (the backend has none).
 * While no session has one, the forwarding path pays one relaxed atomic load. */
#ifndef CMKP11_VENDOR_OP_H
#define CMKP11_VENDOR_OP_H

#include "fork_phase.h"

#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

enum vendor_op_kind {
    VOP_ENVELOPE_ENCRYPT,
    VOP_ENVELOPE_DECRYPT,
    VOP_GCM_FALLBACK,
    VOP_SOFT_ENCRYPT,
    VOP_SOFT_DECRYPT,
    VOP_DIGEST_SM3,
    /* SOFTWARE key pairs (soft_sign.h) */
    VOP_PKEY_ENCRYPT,
    VOP_PKEY_DECRYPT,
    VOP_PKEY_SIGN,
    VOP_PKEY_VERIFY,
    /* SOFTWARE HMAC keys (soft_mac.h) */
    VOP_MAC_SIGN,
    VOP_MAC_VERIFY,
};

/* A session runs at most one operation of each of these at a time, as in PKCS#11. */
enum vendor_op_slot {
    VOP_SLOT_DECRYPT,
    VOP_SLOT_ENCRYPT,
    VOP_SLOT_SIGN,
    VOP_SLOT_VERIFY,
    VOP_SLOT_DIGEST,
};

struct vendor_op {
    enum vendor_op_kind kind;
    CK_OBJECT_HANDLE key; /* the client's CMK handle */
    unsigned char *aad;   /* envelope: the caller's AAD; fallback: GCM AAD */
    size_t aad_len;
    unsigned char *iv; /* fallback: GCM IV */
    size_t iv_len;
    CK_ULONG iv_bits, tag_bits;
    CK_ULONG counter_bits;       /* soft CTR: CK_AES_CTR_PARAMS.ulCounterBits */
    CK_MECHANISM_TYPE mechanism; /* soft: the client's mechanism */
    unsigned long version;       /* soft: the handle's version, 0 = primary (GCM falls back) */
    unsigned char *buffer;       /* multi-part input, run as one at Final */
    size_t buffer_len;
    CK_MECHANISM_TYPE hash; /* pkey: PSS / OAEP hash */
    CK_ULONG mgf, salt_len; /* pkey: PSS / OAEP MGF, PSS salt length; aad: OAEP label or
                               SM2 user id */
    void *md_ctx;      /* digest: the EVP_MD_CTX, freed with the op */
    bool digest_parts; /* digest: DigestUpdate was called (C_Digest is then refused) */
};

extern unsigned long vendor_ops_active; /* atomic count of sessions with an op */

static inline bool vendor_op_any(void)
{
    return __atomic_load_n(&vendor_ops_active, __ATOMIC_RELAXED) != 0;
}

/* Installs op (taking ownership) as the session's operation, replacing any. */
CK_RV vendor_op_begin(CK_SESSION_HANDLE session, struct vendor_op *op);
/* The session's encrypt (or decrypt) op, or NULL. The session's own thread uses it. */
struct vendor_op *vendor_op_get(CK_SESSION_HANDLE session, bool encrypt);
void vendor_op_end(CK_SESSION_HANDLE session, bool encrypt);
/* The same for any slot (sign, verify). */
struct vendor_op *vendor_op_get_slot(CK_SESSION_HANDLE session, enum vendor_op_slot slot);
void vendor_op_end_slot(CK_SESSION_HANDLE session, enum vendor_op_slot slot);
/* The session's digest op, or NULL; and its end. */
struct vendor_op *vendor_op_get_digest(CK_SESSION_HANDLE session);
void vendor_op_end_digest(CK_SESSION_HANDLE session);
void vendor_op_end_session(CK_SESSION_HANDLE session);
void vendor_op_end_all(void);
/* Appends a part to the op's buffer. */
CK_RV vendor_op_buffer(struct vendor_op *op, const unsigned char *part, size_t len);

/* fork_phase.h: the operation table's locks across fork(). */
void vendor_op_at_fork(enum fork_phase p);

#endif
