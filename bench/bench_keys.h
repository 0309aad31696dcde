/*
 * Key templates used by the workloads, and "reuse or create" helpers for
 * the long-lived keys so repeated runs do not pile up objects on the token.
 */
#ifndef CMKBENCH_KEYS_H
#define CMKBENCH_KEYS_H

#include <p11-kit/pkcs11.h>

#define KEYS_LABEL_EC "bench-ec-p256"
#define KEYS_LABEL_RSA "bench-rsa-2048"
#define KEYS_LABEL_AES "bench-aes-256"
#define KEYS_LABEL_AES_ROTATED "bench-aes-rotated"
#define KEYS_LABEL_AES_SOFTWARE "bench-aes-256-software"
#define KEYS_LABEL_EC_SOFTWARE "bench-ec-p256-software"
#define KEYS_LABEL_SM2_SOFTWARE "bench-sm2-software"
#define KEYS_LABEL_SM4_SOFTWARE "bench-sm4-software"
#define KEYS_LABEL_MAX 64

typedef CK_RV (*keys_pair_gen_fn)(CK_FUNCTION_LIST_PTR fn,
				  CK_SESSION_HANDLE s, const char *label,
				  CK_OBJECT_HANDLE *priv,
				  CK_OBJECT_HANDLE *pub);

CK_RV keys_ec_p256_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			    const char *label, CK_OBJECT_HANDLE *priv,
			    CK_OBJECT_HANDLE *pub);
CK_RV keys_ec_p256_software_generate(CK_FUNCTION_LIST_PTR fn,
				     CK_SESSION_HANDLE s, const char *label,
				     CK_OBJECT_HANDLE *priv,
				     CK_OBJECT_HANDLE *pub);
CK_RV keys_sm2_software_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
				 const char *label, CK_OBJECT_HANDLE *priv,
				 CK_OBJECT_HANDLE *pub);
CK_RV keys_rsa_2048_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			     const char *label, CK_OBJECT_HANDLE *priv,
			     CK_OBJECT_HANDLE *pub);
CK_RV keys_aes_256_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			    const char *label, CK_OBJECT_HANDLE *key);

int keys_pair_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
		     const char *label, keys_pair_gen_fn gen,
		     CK_OBJECT_HANDLE *priv, CK_OBJECT_HANDLE *pub);
int keys_aes_256_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			const char *label, CK_OBJECT_HANDLE *key);
/* An SM4 key (cmkp11 only; SOFTWARE level, as SoftHSMv2 has no SM4). */
int keys_sm4_software_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			     CK_OBJECT_HANDLE *key);
/* The same with cmkp11's protection level SOFTWARE (fails on other modules). */
int keys_aes_256_software_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
				 CK_OBJECT_HANDLE *key);
/* level: 0 = a standard template; else cmkp11's CKA_CMK_PROTECTION_LEVEL. */
int keys_objects_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			unsigned long n, CK_ULONG level);
void keys_objects_label(char *buf, size_t len, unsigned long i);

#endif
