/* cmk_import.c - EXTERNAL origin: the clouds' GetParametersForImport, ImportKeyMaterial
 * and DeleteImportedKeyMaterial through PKCS#11.
 *
 * A key created with origin EXTERNAL has a row in state PendingImport and no material.
 * Import parameters are an RSA wrapping pair generated in the backend (private half
 * UNWRAP only) and an import token that binds key id, wrapping key, algorithm and expiry,
 * authenticated by an HMAC key that never leaves the backend. The wrapped material is
 * unwrapped by the backend straight into the key's material identity; cmkp11 never holds
 * it in clear (unless [import] oaep_decode_in_module lets it decode OAEP-SHA-256 the HSM
 * cannot: import_unwrap.c), and SOFTWARE keys, whose material lives sealed in
 * the store: the module reads their checked candidate once, into locked memory, to seal
 * it (import_soft.c; a SOFTWARE pair's PKCS#8 is decoded and checked in the module,
 * import_pkcs8.c). The first import records a fingerprint computed by the backend under
 * the material itself (AES-ECB of a fixed block, HMAC of a fixed label, or the RSA public key), and
 * every later import must match it.
 *
 * Crash safety: an import into a PendingImport key first writes a claim (the importing
 * process) into the store, then unwraps, then commits Enabled and clears the claim in one
 * transaction. A claim whose process is gone is undone at the next login: the material is
 * destroyed, the key stays PendingImport. Re-imports into a key that has its material
 * unwrap into a session object only, which dies with the process.
 *
 * This file holds the import itself and the rules every step shares; the steps live in
 * import_params.c, import_request.c (the request and token), import_unwrap.c,
 * import_material.c (checks and fingerprint), import_store.c, import_attrs.c,
 * import_expiry.c, import_backend.c, import_soft.c, import_token.c and import_token_mac.c. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *import_alg_name(unsigned long alg)
{
    switch (alg) {
    case CMK_WRAP_RSAES_OAEP_SHA_1: return "RSAES_OAEP_SHA_1";
    case CMK_WRAP_RSAES_OAEP_SHA_256: return "RSAES_OAEP_SHA_256";
    case CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1: return "RSA_AES_KEY_WRAP_SHA_1";
    case CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256: return "RSA_AES_KEY_WRAP_SHA_256";
    default: return "?";
    }
}

bool import_alg_is_key_wrap(unsigned long alg)
{
    return alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_1 || alg == CMK_WRAP_RSA_AES_KEY_WRAP_SHA_256;
}

/* The number at the end of a spec name: AES_256 -> 256, RSA_2048 -> 2048; SM4 -> 128. */
unsigned long import_spec_bits(const char *spec)
{
    if (!strcmp(spec, "SM4")) return 128;
    const char *u = strrchr(spec, '_');
    return u ? strtoul(u + 1, NULL, 10) : 0;
}

/* The key type the backend holds a candidate as: SM4 is unknown to it, and its 16 bytes
 * are held (never used) as an AES-128 key, fingerprinted as AES material is. */
CK_KEY_TYPE import_backend_key_type(const struct cmk_record *rec)
{
    return rec->key_type == CKK_CMK_SM4 ? CKK_AES : rec->key_type;
}

CK_OBJECT_CLASS import_material_class(const struct cmk_record *rec)
{
    return rec->objects & CMK_OBJ_SECRET ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
}

/* The rules every import step shares: EXTERNAL origin, not pending deletion. */
CK_RV import_check_importable(const struct cmk_record *rec, const char *op)
{
    if (rec->origin != CMK_ORIGIN_EXTERNAL) {
        log_warning("%s: key %s is of KMS origin; only keys created with origin EXTERNAL take "
                    "imported material",
                    op, rec->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    if (rec->state == CMK_STATE_PENDING_DELETION) {
        log_warning("%s: key %s is pending deletion; cancel the deletion first", op, rec->key_id);
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    return CKR_OK;
}

CK_RV cmk_import_spec_supported(const struct keyspec *spec)
{
    if (spec->key_type == CKK_AES || spec->key_type == CKK_GENERIC_SECRET ||
        spec->key_type == CKK_RSA || spec->key_type == CKK_EC || spec->key_type == CKK_CMK_SM4 ||
        spec->key_type == CKK_CMK_SM2)
        return CKR_OK;
    log_warning("CreateKey: CKA_CMK_ORIGIN EXTERNAL is available for AES, SM4, HMAC, RSA, EC "
                "and SM2 key specs; %s material cannot be imported in this version of cmkp11",
                spec->name);
    return CKR_TEMPLATE_INCONSISTENT;
}

CK_RV cmk_import_finish_create(struct cmk_record *rec)
{
    CK_RV rv = import_mark_material(rec->row, false) == STORE_OK ? CKR_OK : CKR_DEVICE_ERROR;
    if (rv == CKR_OK)
        rv = cmk_create_commit_state(rec, CMK_STATE_PENDING_IMPORT, "CreateKey",
                                     "origin=EXTERNAL (no material yet)", NULL);
    if (rv != CKR_OK) {
        cmk_create_drop_row(rec);
        return rv;
    }
    log_info("CreateKey: %s %s origin EXTERNAL, PendingImport", rec->key_id, rec->key_spec);
    return CKR_OK;
}

/* Is the key's import claim this process's (its pid and start time)? A live owner's
 * claim moves only by the owner's hand, so the answer holds until we release it. */
static bool claim_still_mine(const struct cmk_record *rec)
{
    struct store_import imp;
    bool mine = store_import_get(module.store, rec->row, &imp) == STORE_OK &&
                imp.importing_pid == (long)getpid() &&
                imp.importing_start == util_process_start(getpid());
    store_import_free(&imp);
    return mine;
}

/* The result of a step that uses the parameters' wrapping key. An import that came second
 * may find that key destroyed under it by the one that won (or by newer parameters), and
 * the backend then fails in ways of its own (a handle gone, a general error): the client
 * hears the one reason that counts, as it does when it comes second to the claim. */
static CK_RV wrapping_step(CK_RV rv, const struct cmk_record *rec, const struct import_request *req)
{
    if (rv == CKR_OK || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
        !import_token_used_meanwhile(rec, req->wrap_id))
        return rv;
    log_warning("ImportKeyMaterial: key %s: CKA_CMK_IMPORT_TOKEN was used by another import "
                "meanwhile (or replaced by newer parameters); this import failed on the way "
                "(0x%lx)",
                rec->key_id, rv);
    return CKR_ATTRIBUTE_VALUE_INVALID;
}

CK_RV cmk_import_material(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE cmk,
                          CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE_PTR key)
{
    static const char op[] = "ImportKeyMaterial";
    struct cmk_record rec;
    struct import_request req;
    memset(&req, 0, sizeof(req));
    struct store_import imp;
    memset(&imp, 0, sizeof(imp));
    static const char candidate_label[] = CMK_BACKEND_LABEL_PREFIX "import-candidate";
    struct tmpl_builder b, cand;
    tmpl_init(&b);
    tmpl_init(&cand);
    struct import_stage stage;
    memset(&stage, 0, sizeof(stage));
    struct import_facts mf;
    memset(&mf, 0, sizeof(mf));
    CK_OBJECT_HANDLE wrap_priv = 0, material = 0, candidate = 0;
    CK_ULONG modulus_len = 0;
    bool claimed = false;
    if (!mech || !key || (!wrapped && wrapped_len)) return CKR_ARGUMENTS_BAD;
    CK_RV rv = cmk_request_session_writable(session);
    if (rv != CKR_OK) return rv;
    unsigned kind = handle_kind(cmk);
    enum store_status s = store_cmk_get(module.store, handle_row(cmk), &rec);
    if (s != STORE_OK)
        return s == STORE_NOT_FOUND ? CKR_UNWRAPPING_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
    if (rec.state == CMK_STATE_CREATING || !(rec.objects & kind) || kind == CMK_OBJ_PUBLIC ||
        handle_version(cmk) != 0) {
        log_warning("%s: the unwrapping key must be a CMK's secret or private key object", op);
        rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
        goto out;
    }
    if ((rv = import_check_importable(&rec, op)) != CKR_OK) goto out;
    if ((rv = import_alg_of_mechanism(mech, &req.alg, &req.oaep, &req.aes_bits)) != CKR_OK)
        goto out;
    if (import_material_class(&rec) == CKO_PRIVATE_KEY && !import_alg_is_key_wrap(req.alg)) {
        log_warning("%s: asymmetric material is imported as PKCS#8 with RSA_AES_KEY_WRAP", op);
        rv = CKR_MECHANISM_INVALID;
        goto out;
    }
    if ((rv = import_parse_template(tmpl, n, &rec, &req)) != CKR_OK) goto out;
    if ((rv = import_check_token(session, &rec, &req, &wrap_priv, &modulus_len)) != CKR_OK)
        goto out;
    s = store_import_get(module.store, rec.row, &imp);
    if (s != STORE_OK) {
        rv = CKR_DEVICE_ERROR;
        goto out;
    }

    /* Every import first unwraps a session candidate and checks it (size, fingerprint);
     * only a key without material then takes it, unwrapped again under its identity. */
    bool into_identity = !cmk_import_has_material(&rec);
    unsigned char bid[CMK_BACKEND_ID_LEN];
    char label[80];
    CK_OBJECT_CLASS cls = import_material_class(&rec);
    CK_KEY_TYPE type = import_backend_key_type(&rec);
    bool soft = import_is_soft(&rec), soft_pair = import_is_soft_pair(&rec);
    cmk_backend_id(rec.key_id, 1, bid);
    cmk_backend_label(rec.key_id, 1, label);
    cmk_create_material_template(&b, NULL, 0, bid, label, cls, rec.usage, false);
    tmpl_set(&b, CKA_CLASS, &cls, sizeof(cls));
    tmpl_set(&b, CKA_KEY_TYPE, &type, sizeof(type));
    /* The candidate: the same, a session object under a name of its own. */
    if (soft_pair) {
        import_soft_pair_candidate(&cand, candidate_label);
    } else {
        tmpl_copy_standard(&cand, b.attrs, b.count);
        tmpl_set(&cand, CKA_TOKEN, &ck_false, sizeof(CK_BBOOL));
        tmpl_set(&cand, CKA_ID, candidate_label, sizeof(candidate_label) - 1);
        tmpl_set(&cand, CKA_LABEL, candidate_label, sizeof(candidate_label) - 1);
        /* An EC key's public point is found by ECDH with the generator. */
        if (type == CKK_EC) tmpl_set(&cand, CKA_DERIVE, &ck_true, sizeof(CK_BBOOL));
        if (soft) import_soft_candidate(&cand);
    }
    rv = wrapping_step(import_stage_open(session, &req, wrap_priv, modulus_len, &imp, wrapped,
                                         wrapped_len, &stage),
                       &rec, &req);
    if (rv == CKR_OK && (b.failed || cand.failed)) rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = wrapping_step(import_stage_unwrap(session, &stage, &cand, &candidate), &rec, &req);
    /* A secret's length: known when the module decoded it, else asked of the backend. */
    CK_ULONG secret_len = stage.msg_len;
    if (rv == CKR_OK && soft) rv = import_soft_length(session, candidate, &secret_len);
    if (rv == CKR_OK && cls == CKO_SECRET_KEY && !secret_len)
        rv = wrapping_step(import_secret_length(session, &stage, &cand, candidate, &secret_len),
                           &rec, &req);
    if (rv == CKR_OK)
        rv = soft_pair ? import_soft_check_pair(session, &rec, candidate, secret_len, &mf)
                       : import_check_material(session, &rec, candidate, secret_len, &mf);
    if (rv == CKR_OK && imp.fingerprint &&
        (imp.fingerprint_len != mf.fp_len || memcmp(imp.fingerprint, mf.fp, mf.fp_len))) {
        log_warning("%s: key %s: the material is not the material imported first; a key's "
                    "material never changes",
                    op, rec.key_id);
        rv = CKR_CMK_INCORRECT_KEY_MATERIAL;
    }
    if (rv == CKR_OK && into_identity) {
        if ((rv = import_set_claim(&rec, req.wrap_id)) != CKR_OK) goto out;
        claimed = true;
        util_crash_point("import:after-claim");
        /* The claim is ours and the key waits for material, so whatever carries its identity
         * was left by a dead import whose claim we took over (import_set_claim takes a dead
         * owner's claim): it goes first, or the key would hold two materials under one
         * identity. */
        if (!soft && !cmk_destroy_material(session, rec.key_id, 1)) rv = CKR_DEVICE_ERROR;
        /* A SOFTWARE key's material is the candidate, sealed (a pair's as the key decoded
         * from it); no backend object stays, and the public key is committed with the
         * state. */
        if (rv == CKR_OK && soft_pair)
            rv = import_soft_take_pair(&rec, &mf);
        else if (rv == CKR_OK && soft)
            rv = import_soft_take(session, &rec, candidate, secret_len);
        else if (rv == CKR_OK)
            rv = wrapping_step(import_stage_unwrap(session, &stage, &b, &material), &rec, &req);
        if (rv == CKR_OK && cls == CKO_PRIVATE_KEY && !soft)
            rv = import_make_public_object(session, &rec, material, &mf);
        if (rv == CKR_OK) util_crash_point("import:after-unwrap");
    }
    if (rv == CKR_OK) rv = import_commit(&rec, &req, &mf, !imp.fingerprint);
    if (rv == CKR_OK) {
        claimed = false;
        import_clean_wrapping_pairs(session, rec.key_id, req.wrap_id, NULL);
        *key = handle_for_cmk(rec.row, kind);
        log_info("%s: key %s: material imported (%s), expires %lld", op, rec.key_id,
                 import_alg_name(req.alg), (long long)req.expires);
    } else if (claimed && claim_still_mine(&rec)) {
        /* Nothing of a failed import stays: the material made goes, the claim is released.
         * While the claim is ours nobody else may make the key's material, so whatever
         * carries its identity is ours. */
        if (soft)
            import_soft_drop(&rec);
        else
            cmk_destroy_material(session, rec.key_id, 1);
    } else if (claimed) {
        /* The claim was taken from us (which the owner check keeps from a live process):
         * another import may be making this identity now. Only what we made goes. */
        log_error("%s: key %s: this process no longer holds the import claim", op, rec.key_id);
        claimed = false;
        if (material) module_backend_destroy_own(session, &material, 1);
    }
out:
    /* The candidate lives until here: material decoded in the module is copied from it,
     * a SOFTWARE key's is sealed from it. */
    module_backend_destroy_own(session, &candidate, candidate ? 1 : 0);
    import_stage_close(session, &stage);
    /* Released matched by owner: a claim that is no longer ours is not ours to clear. */
    if (claimed)
        store_claim_move(module.store, STORE_CLAIM_IMPORT, rec.row, 0, (long)getpid(),
                         util_process_start(getpid()), 0, 0);
    import_facts_free(&mf);
    store_import_free(&imp);
    tmpl_free(&b);
    tmpl_free(&cand);
    cmk_record_free(&rec);
    return rv;
}
