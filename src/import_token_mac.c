/* import_token_mac.c - the MAC of import tokens: HMAC-SHA-256 under a generic secret made
 * once in the backend, computed and checked there (C_Sign / C_Verify), so a token cannot
 * be forged or edited. */
#include "import_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char mac_key_id[] = {'C', 'M', 'K', 'I', 0x01};
#define MAC_KEY_LABEL CMK_BACKEND_LABEL_PREFIX "import-token-key"

/* The HMAC keys that authenticate import tokens (normally one; two processes making the
 * first at once may leave two, and a token of either verifies). */
static CK_RV mac_keys(CK_SESSION_HANDLE session, bool create, CK_OBJECT_HANDLE *out, CK_ULONG *n)
{
    CK_RV rv = module_backend_find_by_id(session, mac_key_id, sizeof(mac_key_id),
                                  CKO_SECRET_KEY, out, 4, n);
    if (rv != CKR_OK || *n > 0 || !create) return rv;
    const CK_ATTRIBUTE usage[] = {{CKA_SIGN, (void *)&ck_true, 1},
                                  {CKA_VERIFY, (void *)&ck_true, 1}};
    rv = cmk_create_internal_key(session, CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, usage, 2,
                                 mac_key_id, sizeof(mac_key_id), MAC_KEY_LABEL, out);
    if (rv != CKR_OK) {
        log_error("GetParametersForImport: the backend cannot make the import token key: 0x%lx",
                  rv);
        return rv;
    }
    *n = 1;
    log_info("GetParametersForImport: made the import token key in the backend");
    return CKR_OK;
}

static CK_MECHANISM hmac_mech = {CKM_SHA256_HMAC, NULL, 0};

CK_RV import_token_sign(CK_SESSION_HANDLE session, unsigned char token[IMPORT_TOKEN_LEN])
{
    CK_OBJECT_HANDLE keys[4];
    CK_ULONG n = 0, mac_len = IMPORT_TOKEN_MAC_LEN;
    CK_RV rv = mac_keys(session, true, keys, &n);
    if (rv == CKR_OK) rv = module.be.fn->C_SignInit(session, &hmac_mech, keys[0]);
    if (rv == CKR_OK)
        rv = module.be.fn->C_Sign(session, token, IMPORT_TOKEN_BODY_LEN,
                                  token + IMPORT_TOKEN_BODY_LEN, &mac_len);
    return rv;
}

bool import_token_authentic(CK_SESSION_HANDLE session, const unsigned char *token)
{
    CK_OBJECT_HANDLE keys[4];
    CK_ULONG n = 0;
    if (mac_keys(session, false, keys, &n) != CKR_OK) return false;
    for (CK_ULONG i = 0; i < n; i++) {
        if (module.be.fn->C_VerifyInit(session, &hmac_mech, keys[i]) == CKR_OK &&
            module.be.fn->C_Verify(session, (CK_BYTE_PTR)token, IMPORT_TOKEN_BODY_LEN,
                                   (CK_BYTE_PTR)token + IMPORT_TOKEN_BODY_LEN,
                                   IMPORT_TOKEN_MAC_LEN) == CKR_OK)
            return true;
    }
    return false;
}
