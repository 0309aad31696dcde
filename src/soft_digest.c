/* soft_digest.c - SM3 with OpenSSL EVP in the module's own library context; the
 * EVP_MD_CTX lives in the session's vendor op and is freed with it. */
#include "soft_digest.h"

#include <openssl/evp.h>

#include "cmkp11/cmkp11.h"
#include "log.h"
#include "module.h"
#include "pubkey.h"

CK_RV soft_digest_init(CK_SESSION_HANDLE session, const CK_MECHANISM *mech)
{
    CK_SESSION_INFO info;
    CK_RV rv = module.be.fn->C_GetSessionInfo(session, &info);
    if (rv != CKR_OK) return rv;
    if (mech->pParameter || mech->ulParameterLen) {
        log_warning("C_DigestInit: CKM_CMK_SM3 takes no parameter");
        return CKR_MECHANISM_PARAM_INVALID;
    }
    EVP_MD *md = EVP_MD_fetch(pubkey_libctx(), "SM3", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    rv = CKR_OK;
    if (!md || !ctx || EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
        log_error("C_DigestInit: OpenSSL has no SM3 in the module's library context");
        EVP_MD_CTX_free(ctx);
        rv = CKR_FUNCTION_FAILED;
    }
    EVP_MD_free(md);
    if (rv != CKR_OK) return rv;
    struct vendor_op op = {.kind = VOP_DIGEST_SM3, .mechanism = CKM_CMK_SM3, .md_ctx = ctx};
    return vendor_op_begin(session, &op);
}

/* The length query and the buffer check common to C_Digest and C_DigestFinal: CKR_OK
 * with *done when the call ends there (query answered), else go on. */
static CK_RV check_room(CK_BYTE_PTR out, CK_ULONG_PTR out_len, bool *done)
{
    *done = true;
    if (!out_len) return CKR_ARGUMENTS_BAD;
    if (!out) {
        *out_len = SM3_DIGEST_LEN;
        return CKR_OK;
    }
    if (*out_len < SM3_DIGEST_LEN) {
        *out_len = SM3_DIGEST_LEN;
        return CKR_BUFFER_TOO_SMALL;
    }
    *done = false;
    return CKR_OK;
}

static CK_RV finish(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR out,
                    CK_ULONG_PTR out_len)
{
    unsigned int n = 0;
    CK_RV rv = EVP_DigestFinal_ex(op->md_ctx, out, &n) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
    if (rv == CKR_OK) *out_len = n;
    vendor_op_end_digest(session);
    return rv;
}

CK_RV soft_digest(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                  CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    if (op->digest_parts) {
        /* PKCS#11: C_Digest cannot finish a multi-part digest; the op goes on. */
        log_warning("C_Digest: a multi-part SM3 digest is running; finish it with C_DigestFinal");
        return CKR_OPERATION_ACTIVE;
    }
    if (!in && in_len) {
        vendor_op_end_digest(session);
        return CKR_ARGUMENTS_BAD;
    }
    bool done;
    CK_RV rv = check_room(out, out_len, &done);
    if (done) return rv;
    if (in_len && EVP_DigestUpdate(op->md_ctx, in, in_len) != 1) {
        vendor_op_end_digest(session);
        return CKR_FUNCTION_FAILED;
    }
    return finish(session, op, out, out_len);
}

CK_RV soft_digest_update(CK_SESSION_HANDLE session, struct vendor_op *op, const unsigned char *in,
                         CK_ULONG in_len)
{
    CK_RV rv = CKR_OK;
    if (!in && in_len)
        rv = CKR_ARGUMENTS_BAD;
    else if (in_len && EVP_DigestUpdate(op->md_ctx, in, in_len) != 1)
        rv = CKR_FUNCTION_FAILED;
    op->digest_parts = true;
    if (rv != CKR_OK) vendor_op_end_digest(session);
    return rv;
}

CK_RV soft_digest_final(CK_SESSION_HANDLE session, struct vendor_op *op, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len)
{
    bool done;
    CK_RV rv = check_room(out, out_len, &done);
    if (done) return rv;
    return finish(session, op, out, out_len);
}
