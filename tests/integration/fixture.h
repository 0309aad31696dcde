/* fixture.h - an initialised module, a logged-in read/write session, key helpers. */
#ifndef CMKP11_TEST_FIXTURE_H
#define CMKP11_TEST_FIXTURE_H

#include "harness.h"

extern CK_FUNCTION_LIST_PTR p11;

/* What fixture_open gives C_Initialize when set (default: CKF_OS_LOCKING_OK alone). */
extern CK_C_INITIALIZE_ARGS *fixture_init_args;
/* C_Initialize(NULL) with stderr captured (where configuration errors go before a log
 * file is open); returns rv, the text in out; finalises again when it succeeded. */
CK_RV fixture_init_capturing(char *out, size_t size);
/* The test token's SO PIN (CMK_SO_PIN). */
const char *fixture_so_pin(void);
/* text as C_InitToken takes a label: 32 bytes, blank-padded (a static buffer). */
CK_UTF8CHAR *fixture_token_label(const char *text);
/* C_Initialize + R/W session + user login, on slot 0 of the module under test. */
CK_SESSION_HANDLE fixture_open(void);
void fixture_close(CK_SESSION_HANDLE s);
/* One more session on the CMK token (the first slot listed), flags beside
 * CKF_SERIAL_SESSION (CKF_RW_SESSION or 0); no login of its own. */
CK_SESSION_HANDLE fixture_session(CK_FLAGS flags);
/* Sets line ("<key> = <value>") in [section] of the configuration CMKP11_CONF names:
 * replaces the key's line when the file sets it already (the module refuses a key given
 * twice), else appends "[section]\n<line>". The next C_Initialize reads it. */
void fixture_set_conf(const char *section, const char *line);
/* fixture_set_conf("policy", line): the next fixture_open runs under that policy. */
void fixture_append_policy(const char *line);

/* Pause points (util_pause_point in the module): pause_arm makes the first caller that
 * reaches point wait there (in this process and in children started afterwards);
 * pause_wait_reached waits (at most 30 s) until one has arrived, true when one did;
 * pause_release lets it go on and disarms the point for later callers. */
void pause_arm(const char *point);
bool pause_wait_reached(const char *point);
void pause_release(const char *point);

/* Extra attributes appended to the helpers' templates (NULL, 0 for none). */
CK_RV make_aes(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
               CK_OBJECT_HANDLE *key);
/* An AES key with an explicit alias (CKA_CMK_ALIAS, the clouds' rules) and a label. */
CK_RV make_aes_alias(CK_SESSION_HANDLE s, const char *label, const char *alias,
                     CK_OBJECT_HANDLE *key);
/* Keys found by alias (CKA_CMK_ALIAS); *first the first one's handle. */
CK_ULONG find_by_alias(CK_SESSION_HANDLE s, const char *alias, CK_OBJECT_HANDLE *first);
CK_RV make_ec(CK_SESSION_HANDLE s, const char *alias, const CK_ATTRIBUTE *extra, CK_ULONG n,
              CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
/* Finds objects matching tmpl; returns the count, the first handle in *first. */
CK_ULONG find_count(CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *first);
CK_ULONG find_by_label(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_CLASS cls,
                       CK_OBJECT_HANDLE *first);
CK_RV get_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_ULONG *out);
/* A SOFTWARE key's object answers every standard attribute with the code the HSM key's
 * object gives, and with its value (those of the key's own public values only when
 * same_material: the two keys hold the same material). A secret key's CKA_WRAP and
 * CKA_UNWRAP are left out: a SOFTWARE key never wraps. */
void fixture_same_answers(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE soft, CK_OBJECT_HANDLE hsm,
                          bool same_material);
/* Reads a text attribute into buf (NUL-terminated). */
CK_RV get_text(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, char *buf,
               size_t size);
CK_RV set_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, CK_ULONG v);
/* Encrypts one 16-byte block with an AES key under CKM_AES_ECB: CKR_OK when allowed. */
CK_RV encrypt_block(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);
CK_RV set_text(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t, const char *v);
/* Signs 32 bytes with ECDSA and verifies with pub; returns the first failure. */
CK_RV sign_verify_ec(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub);
/* AES-GCM encrypt then decrypt of a short message; CKR_OK when it round-trips. */
CK_RV aes_gcm_roundtrip(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);
/* One CKM_CMK_ENVELOPE call (no context), Init and the one-shot call: the envelope names
 * the version it was made under, so a later decryption needs that version's material. */
CK_RV envelope_call(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, bool encrypt,
                    const unsigned char *in, CK_ULONG in_len, unsigned char *out,
                    CK_ULONG *out_len);

#endif
