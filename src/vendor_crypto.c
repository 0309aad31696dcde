/* vendor_crypto.c - envelope encryption and version fallback, composed from the
 * backend's own AES-GCM for HSM keys (key material never leaves the backend), and from
 * the in-process AES-GCM of soft_crypt for SOFTWARE keys; the same byte format. SM4 keys
 * (always SOFTWARE) seal in format 0x02, SM4-CTR then HMAC-SM3 (envelope_sm4.h). */
#include "vendor_crypto.h"

#include <stdlib.h>
#include <string.h>

#include "backend_gcm.h"
#include "cmk.h"
#include "cmkp11/cmkp11.h"
#include "envelope_sm4.h"
#include "handles.h"
#include "keyspec.h"
#include "log.h"
#include "module.h"
#include "sm_backend_map.h"
#include "soft_crypt.h"
#include "util.h"

/* PKCS#11: a call ends the operation unless it succeeded as a length query or asked for
 * a bigger buffer. */
static bool operation_continues(CK_RV rv, CK_BYTE_PTR out)
{
    return rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !out);
}

static void *dup_bytes(const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    if (copy && n) memcpy(copy, p, n);
    return copy;
}

CK_RV envelope_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
                    bool encrypt)
{
    const CK_CMK_ENVELOPE_PARAMS *params = mech->pParameter;
    if (mech->ulParameterLen != 0 && mech->ulParameterLen != sizeof(*params)) {
        log_warning("envelope: the mechanism parameter must be NULL or CK_CMK_ENVELOPE_PARAMS");
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (params && mech->ulParameterLen && params->ulAADLen && !params->pAAD)
        return CKR_MECHANISM_PARAM_INVALID;
    if (!handle_is_cmk(key) || handle_kind(key) != CMK_OBJ_SECRET) {
        /* A handle that names nothing is invalid before it is of the wrong type. */
        CK_RV rv = cmk_object_exists(session, key);
        if (rv == CKR_OBJECT_HANDLE_INVALID) return CKR_KEY_HANDLE_INVALID;
        if (rv != CKR_OK) return rv;
        log_warning("envelope: the key must be a symmetric CMK");
        return CKR_KEY_TYPE_INCONSISTENT;
    }
    CK_OBJECT_HANDLE material;
    struct cmk_live facts;
    /* Checked now, as for any Init: state and usage. */
    enum cmk_use use = encrypt ? CMK_USE_ENCRYPT : CMK_USE_DECRYPT;
    CK_RV rv = cmk_check_use(session, key, handle_version(key), use, &facts);
    if (rv == CKR_OK && facts.protection != CMK_PROTECTION_SOFTWARE)
        rv = cmk_resolve_version_for_use(session, key, handle_version(key), use, &material, NULL);
    if (rv != CKR_OK) return rv;
    if (!keyspec_is_cipher_key(facts.key_type)) return CKR_KEY_TYPE_INCONSISTENT;
    CK_MECHANISM_TYPE ecb;
    if (facts.key_type == CKK_CMK_SM4 && facts.protection == CMK_PROTECTION_HSM &&
        !sm_map_code(CKM_CMK_SM4_ECB, &ecb)) {
        log_warning("envelope: key %s is an SM4 key at level HSM: its subkeys are derived with "
                    "the backend's SM4-ECB, and [gm_backend] sm4_ecb is not set",
                    facts.key_id);
        return CKR_MECHANISM_INVALID;
    }
    struct vendor_op op = {.kind = encrypt ? VOP_ENVELOPE_ENCRYPT : VOP_ENVELOPE_DECRYPT,
                           .key = key};
    if (params && mech->ulParameterLen && params->ulAADLen) {
        op.aad = dup_bytes(params->pAAD, params->ulAADLen);
        op.aad_len = params->ulAADLen;
        if (!op.aad) return CKR_HOST_MEMORY;
    }
    return vendor_op_begin(session, &op);
}

/* The envelope's format for a key type: SM4's or AES-GCM's. */
static unsigned char format_for(CK_KEY_TYPE type)
{
    return type == CKK_CMK_SM4 ? ENVELOPE_FORMAT_SM4 : ENVELOPE_FORMAT;
}

/* SM4: encrypt-then-MAC in-process (subkeys from the backend's SM4-ECB under material at
 * level HSM); *out_len is checked by the caller. */
static CK_RV sm4_call(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                      const struct cmk_live *facts, unsigned long version, bool encrypt,
                      const unsigned char *header, const struct vendor_op *op, CK_BYTE_PTR in,
                      CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv = envelope_sm4_run(session, material, facts, version, encrypt, header, op->aad,
                                op->aad_len, in, in_len, out);
    if (rv == CKR_OK) *out_len = encrypt ? in_len + ENVELOPE_MAC_LEN : in_len - ENVELOPE_MAC_LEN;
    return rv;
}

/* The body under the header: SM4 keys by sm4_call; else GCM with header || caller AAD as
 * authenticated data, in the backend under material, or in-process for a SOFTWARE key
 * (facts). */
static CK_RV body_call(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material,
                       const struct cmk_live *facts, unsigned long version, bool encrypt,
                       unsigned char *iv, const unsigned char *header, const struct vendor_op *op,
                       CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (facts->key_type == CKK_CMK_SM4)
        return sm4_call(session, material, facts, version, encrypt, header, op, in, in_len, out,
                        out_len);
    size_t aad_len = ENVELOPE_HEADER_LEN + op->aad_len;
    unsigned char *aad = malloc(aad_len);
    if (!aad) return CKR_HOST_MEMORY;
    memcpy(aad, header, ENVELOPE_HEADER_LEN);
    if (op->aad_len) memcpy(aad + ENVELOPE_HEADER_LEN, op->aad, op->aad_len);
    if (facts->protection == CMK_PROTECTION_SOFTWARE) {
        CK_RV rv = soft_crypt_gcm(session, facts, version, encrypt, iv, ENVELOPE_IV_LEN, aad,
                                  aad_len, ENVELOPE_TAG_LEN, in, in_len, out, out_len);
        free(aad);
        return rv;
    }
    CK_GCM_PARAMS gcm = {iv,  ENVELOPE_IV_LEN, ENVELOPE_IV_LEN * 8,
                         aad, aad_len,         ENVELOPE_TAG_LEN * 8};
    CK_RV rv = backend_gcm_run(session, material, &gcm, encrypt, in, in_len, out, out_len);
    free(aad);
    return rv;
}

static CK_RV envelope_seal(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR in,
                           CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    struct cmk_live facts;
    CK_RV rv = cmk_check_use(session, op->key, 0, CMK_USE_ENCRYPT, &facts);
    if (rv != CKR_OK) return rv;
    struct envelope_header h = {.format = format_for(facts.key_type)};
    CK_ULONG need = ENVELOPE_HEADER_LEN + in_len + envelope_tag_len(h.format);
    if (!out) {
        *out_len = need;
        return CKR_OK;
    }
    if (*out_len < need) {
        *out_len = need;
        return CKR_BUFFER_TOO_SMALL;
    }
    CK_OBJECT_HANDLE material = CK_INVALID_HANDLE;
    if (facts.protection != CMK_PROTECTION_SOFTWARE)
        rv = cmk_resolve_version_for_use(session, op->key, 0, CMK_USE_ENCRYPT, &material, NULL);
    if (rv != CKR_OK) return rv;
    util_uuid_bytes(facts.key_id, h.key_id);
    h.version = facts.primary_version;
    /* A fresh IV from the HSM's generator for every message. */
    rv = module.be.fn->C_GenerateRandom(session, h.iv, ENVELOPE_IV_LEN);
    if (rv != CKR_OK) return rv;
    unsigned char iv[ENVELOPE_IV_LEN];
    memcpy(iv, h.iv, sizeof(iv));
    unsigned char saved[ENVELOPE_HEADER_LEN];
    envelope_write(saved, &h);
    memcpy(out, saved, sizeof(saved));
    CK_ULONG body = *out_len - ENVELOPE_HEADER_LEN;
    rv = body_call(session, material, &facts, facts.primary_version, true, iv, saved, op, in,
                   in_len, out + ENVELOPE_HEADER_LEN, &body);
    if (rv == CKR_OK) *out_len = ENVELOPE_HEADER_LEN + body;
    return rv;
}

static CK_RV envelope_open(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR in,
                           CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    struct envelope_header h;
    CK_ULONG plain;
    CK_RV rv = envelope_parse(in, in_len, &h, &plain);
    if (rv != CKR_OK) return rv;
    struct cmk_live facts;
    CK_OBJECT_HANDLE material = CK_INVALID_HANDLE;
    bool soft = false;
    rv = cmk_check_use(session, op->key, 0, CMK_USE_DECRYPT, &facts);
    if (rv == CKR_OK) soft = facts.protection == CMK_PROTECTION_SOFTWARE;
    if (rv == CKR_OK && !soft)
        rv = cmk_resolve_version_for_use(session, op->key, 0, CMK_USE_DECRYPT, &material, NULL);
    if (rv != CKR_OK) return rv;
    unsigned char key_id[16];
    util_uuid_bytes(facts.key_id, key_id);
    if (memcmp(h.key_id, key_id, 16) != 0) {
        log_warning("envelope: the ciphertext names another key than %s", facts.key_id);
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    if (h.format != format_for(facts.key_type)) {
        log_warning("envelope: format 0x%02x is not the format of key %s (0x%02x)", h.format,
                    facts.key_id, format_for(facts.key_type));
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    unsigned long version = h.version;
    if (version > facts.primary_version) {
        log_warning("envelope: key %s has no version %lu", facts.key_id, version);
        return CKR_ENCRYPTED_DATA_INVALID;
    }
    if (!out) {
        *out_len = plain;
        return CKR_OK;
    }
    if (*out_len < plain) {
        *out_len = plain;
        return CKR_BUFFER_TOO_SMALL;
    }
    if (version != facts.primary_version && !soft) {
        rv = cmk_resolve_version_for_use(session, op->key, version, CMK_USE_DECRYPT, &material,
                                         NULL);
        if (rv != CKR_OK) return rv;
    }
    rv = body_call(session, material, &facts, version, false, h.iv, in, op,
                   in + ENVELOPE_HEADER_LEN, in_len - ENVELOPE_HEADER_LEN, out, out_len);
    /* Only a failed tag or MAC is the ciphertext's fault; anything else keeps its code. */
    if (rv == CKR_ENCRYPTED_DATA_INVALID)
        log_warning("envelope: key %s version %lu: authentication failed", facts.key_id, version);
    else if (rv != CKR_OK)
        log_warning("envelope: key %s version %lu: decryption failed (0x%lx)", facts.key_id,
                    version, rv);
    return rv;
}

CK_RV gcm_fallback_begin(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    const CK_GCM_PARAMS *gcm = mech->pParameter;
    if (!gcm || mech->ulParameterLen != sizeof(*gcm)) return CKR_OK; /* the backend judged it */
    struct vendor_op op = {
        .kind = VOP_GCM_FALLBACK, .key = key, .iv_bits = gcm->ulIvBits, .tag_bits = gcm->ulTagBits};
    op.iv = dup_bytes(gcm->pIv, gcm->ulIvLen);
    op.iv_len = gcm->ulIvLen;
    op.aad = dup_bytes(gcm->pAAD, gcm->ulAADLen);
    op.aad_len = gcm->ulAADLen;
    if (!op.iv || !op.aad) {
        free(op.iv);
        free(op.aad);
        return CKR_HOST_MEMORY;
    }
    return vendor_op_begin(session, &op);
}

/* How a backend says an AES-GCM tag does not verify: SoftHSMv2 2.6 says
 * CKR_GENERAL_ERROR, the standard CKR_ENCRYPTED_DATA_INVALID. */
static bool tag_failed(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_ENCRYPTED_DATA_INVALID;
}

/* The backend has the primary version's decrypt running; if its tag fails, each older
 * version is tried, newest first, until one verifies. The key is checked again first, as
 * the older versions' own Init is made now: a key disabled (or scheduled for deletion)
 * since the application's C_DecryptInit answers as its use does everywhere
 * (CKR_KEY_FUNCTION_NOT_PERMITTED, logged by the check), not with the primary's tag
 * failure. A ciphertext no version verifies is CKR_ENCRYPTED_DATA_INVALID, the code
 * PKCS#11 gives AES-GCM for it, never the backend's CKR_GENERAL_ERROR. The versions are
 * resolved first (the store is never waited for under the token lock), and their
 * C_DecryptInit..C_Decrypt run in one shared token-lock section, so that no purge
 * destroys a version's material meanwhile (module.h: the lifetime of the module's own
 * backend objects). */
static CK_RV gcm_fallback_decrypt(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR in,
                                  CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV first = module.be.fn->C_Decrypt(session, in, in_len, out, out_len);
    if (first == CKR_OK || first == CKR_BUFFER_TOO_SMALL || !out || !tag_failed(first))
        return first;
    struct cmk_live facts;
    CK_RV rv = cmk_check_use(session, op->key, 0, CMK_USE_DECRYPT, &facts);
    if (rv != CKR_OK) return rv;
    /* older[i]: version primary - 1 - i; CK_INVALID_HANDLE when it cannot try (logged). */
    unsigned long n = facts.primary_version - 1;
    CK_OBJECT_HANDLE *older = n ? calloc(n, sizeof(*older)) : NULL;
    if (n && !older) return CKR_HOST_MEMORY;
    for (unsigned long i = 0; i < n; i++)
        if (cmk_resolve_version_for_use(session, op->key, facts.primary_version - 1 - i,
                                        CMK_USE_DECRYPT, &older[i], NULL) != CKR_OK)
            older[i] = CK_INVALID_HANDLE;
    CK_GCM_PARAMS gcm = {op->iv, op->iv_len, op->iv_bits, op->aad, op->aad_len, op->tag_bits};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_ULONG capacity = *out_len;
    unsigned long used = 0;
    CK_RV locked = module_token_lock_shared();
    if (locked != CKR_OK) {
        free(older);
        return locked;
    }
    for (unsigned long i = 0; i < n && !used; i++) {
        if (older[i] == CK_INVALID_HANDLE ||
            module.be.fn->C_DecryptInit(session, &mech, older[i]) != CKR_OK)
            continue;
        *out_len = capacity;
        if (module.be.fn->C_Decrypt(session, in, in_len, out, out_len) == CKR_OK)
            used = facts.primary_version - 1 - i;
    }
    module_token_unlock();
    free(older);
    if (used) {
        log_debug("AES-GCM decrypt: key %s: version %lu verified", facts.key_id, used);
        return CKR_OK;
    }
    *out_len = capacity;
    log_warning("AES-GCM decrypt: key %s: the tag verifies under none of its %lu versions "
                "(0x%lx from the backend): the ciphertext, IV, AAD or tag was changed, or it "
                "is not this key's",
                facts.key_id, facts.primary_version, first);
    return CKR_ENCRYPTED_DATA_INVALID;
}

CK_RV vendor_encrypt(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;
    CK_RV rv = op->kind == VOP_SOFT_ENCRYPT
                   ? soft_crypt_run(s, op, in ? in : (CK_BYTE_PTR) "", in_len, out, out_len)
                   : envelope_seal(s, op, in, in_len, out, out_len);
    if (!operation_continues(rv, out)) vendor_op_end(s, true);
    return rv;
}

CK_RV vendor_encrypt_update(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in,
                            CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;
    *out_len = 0;            /* everything comes out at Final, once the tag is known */
    if (!out) return CKR_OK; /* a length query: the part is not taken */
    CK_RV rv = vendor_op_buffer(op, in, in_len);
    if (rv != CKR_OK) vendor_op_end(s, true);
    return rv;
}

CK_RV vendor_encrypt_final(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    if (!out_len) return CKR_ARGUMENTS_BAD;
    CK_RV rv = op->kind == VOP_SOFT_ENCRYPT
                   ? soft_crypt_run(s, op, NULL, 0, out, out_len)
                   : envelope_seal(s, op, op->buffer, op->buffer_len, out, out_len);
    if (!operation_continues(rv, out)) vendor_op_end(s, true);
    return rv;
}

CK_RV vendor_decrypt(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in, CK_ULONG in_len,
                     CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;
    CK_RV rv = op->kind == VOP_GCM_FALLBACK ? gcm_fallback_decrypt(s, op, in, in_len, out, out_len)
               : op->kind == VOP_SOFT_DECRYPT
                   ? soft_crypt_run(s, op, in ? in : (CK_BYTE_PTR) "", in_len, out, out_len)
                   : envelope_open(s, op, in, in_len, out, out_len);
    if (!operation_continues(rv, out)) vendor_op_end(s, false);
    return rv;
}

CK_RV vendor_decrypt_update(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR in,
                            CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (op->kind == VOP_GCM_FALLBACK) {
        /* Multi-part GCM stays with the primary version: forward and stop tracking. */
        vendor_op_end(s, false);
        return module.be.fn->C_DecryptUpdate(s, in, in_len, out, out_len);
    }
    if (!out_len || (!in && in_len)) return CKR_ARGUMENTS_BAD;
    *out_len = 0;
    if (!out) return CKR_OK; /* a length query: the part is not taken */
    CK_RV rv = vendor_op_buffer(op, in, in_len);
    if (rv != CKR_OK) vendor_op_end(s, false);
    return rv;
}

CK_RV vendor_decrypt_final(CK_SESSION_HANDLE s, struct vendor_op *op, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
    if (op->kind == VOP_GCM_FALLBACK) {
        vendor_op_end(s, false);
        return module.be.fn->C_DecryptFinal(s, out, out_len);
    }
    if (!out_len) return CKR_ARGUMENTS_BAD;
    CK_RV rv = op->kind == VOP_SOFT_DECRYPT
                   ? soft_crypt_run(s, op, NULL, 0, out, out_len)
                   : envelope_open(s, op, op->buffer, op->buffer_len, out, out_len);
    if (!operation_continues(rv, out)) vendor_op_end(s, false);
    return rv;
}
