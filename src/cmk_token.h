/* cmk_token.h - the CMK token as a whole: its initialisation by the SO (C_InitToken). */
#ifndef CMKP11_CMK_TOKEN_H
#define CMKP11_CMK_TOKEN_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

/* C_InitToken on the CMK slot: re-initialises the backend token (every object on it is
 * gone, as on any token) and, in the same store transaction, removes every CMK of the
 * token and every record of its other objects, audited as one InitToken row. Refused
 * with CKR_SESSION_EXISTS while this process has a session on the CMK slot, with
 * CKR_ACTION_PROHIBITED for a label other than [token] label or when [policy] init_token
 * says so; the backend's refusals (a wrong SO PIN) change nothing either. */
CK_RV cmk_token_init(CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label);

/* Is label (32 bytes, blank-padded) the configured backend token's [backend] token_label? */
bool cmk_token_label_is_backend_token(const CK_UTF8CHAR *label);

#endif
