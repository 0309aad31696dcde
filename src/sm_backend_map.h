/* sm_backend_map.h - cmkp11's GM/T codes (CKK_CMK_SM*, CKM_CMK_SM*, cmkp11.h) to the
 * backend's own, as [gm_backend] of cmkp11.conf maps them (config_gm.h). With a mapping, an
 * SM key lives at level HSM: made by the backend with its own key type and generation
 * mechanism, used through its own mechanism codes; clients see only cmkp11's codes. */
#ifndef CMKP11_SM_BACKEND_MAP_H
#define CMKP11_SM_BACKEND_MAP_H

#include <p11-kit/pkcs11.h>
#include <stdbool.h>

#include "cmk.h"
#include "template.h"

/* CKK_CMK_SM4 or CKK_CMK_SM2. */
bool sm_map_is_sm_key(CK_KEY_TYPE type);
/* The backend can hold a key of this SM type and usage: its key type, its generation
 * and at least one mechanism of the usage are mapped. */
bool sm_map_spec_served(CK_KEY_TYPE type, unsigned long usage);
/* The backend's code for one of cmkp11's SM mechanisms; false when not mapped. */
bool sm_map_code(CK_MECHANISM_TYPE ours, CK_MECHANISM_TYPE *backend);

/* The backend's key type and generation mechanism for an SM key type; false, with a log
 * line, when either is not mapped. */
bool sm_map_keygen(CK_KEY_TYPE type, CK_KEY_TYPE *backend_type, CK_MECHANISM_TYPE *gen);
/* Turns the backend templates and generation mechanism of an SM CreateKey (or rotation)
 * into the backend's: its key type, SM4's 16-byte length, the SM2 pair's curve. pub is
 * NULL for SM4. False, with a log line, when the type or its generation is not mapped. */
bool sm_map_generate(CK_KEY_TYPE type, struct tmpl_builder *main, struct tmpl_builder *pub,
                     CK_MECHANISM *gen);

/* in is one of cmkp11's SM mechanisms: out is in with the backend's code (the parameter
 * passes unchanged). CKR_MECHANISM_INVALID and a log line when it is not mapped or not
 * one of cmkp11's SM mechanisms. */
CK_RV sm_map_mechanism(const CK_MECHANISM *in, CK_MECHANISM *out);
/* For an *Init forwarded to the backend on a key of key_type: with an SM mechanism or on
 * an SM key, *mech becomes its mapped copy in buf. An SM mechanism on a key of another
 * type, or another mechanism on an SM key: CKR_KEY_TYPE_INCONSISTENT (as at level
 * SOFTWARE). Anything else is left alone. */
CK_RV sm_map_for_key(CK_KEY_TYPE key_type, CK_MECHANISM_PTR *mech, CK_MECHANISM *buf);

/* An SM key at level HSM answers CKA_KEY_TYPE, CKA_KEY_GEN_MECHANISM and (SM2)
 * CKA_EC_PARAMS with cmkp11's codes and the SM2 curve, never the backend's stand-ins;
 * (CK_RV)-1 for any other attribute (the backend's to answer). */
CK_RV sm_map_answer(CK_KEY_TYPE type, CK_ATTRIBUTE *a);

/* A CMK about to be used through the backend (*Init, wrap, unwrap): checks state and
 * usage, swaps *key for its backend object, then maps *mech as sm_map_for_key does (a NULL
 * *mech is left alone). */
CK_RV sm_map_resolve(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *key, enum cmk_use use,
                     CK_MECHANISM_PTR *mech, CK_MECHANISM *buf);

/* SM4-ECB in the backend under material (an HSM-level SM4 key): len a multiple of 16. */
CK_RV sm_map_sm4_ecb(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE material, const unsigned char *in,
                     CK_ULONG len, unsigned char *out);

#endif
