/*
 * Key templates and the reuse-or-create logic for the long-lived keys.
 */
#include "bench_keys.h"
#include "bench_p11.h"

#include "bench_stats.h"
#include "cmkp11/cmkp11.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DER encoding of OID 1.2.840.10045.3.1.7 (prime256v1). */
static const unsigned char keys_oid_p256[] = {
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};
static const unsigned char keys_rsa_exponent[] = { 0x01, 0x00, 0x01 };

static CK_BBOOL keys_true = CK_TRUE;

#define KEYS_ATTR_BOOL(type) { (type), &keys_true, sizeof(keys_true) }
#define KEYS_ATTR_LABEL(label) \
	{ CKA_LABEL, (void *)(label), (CK_ULONG)strlen(label) }

/*
 * CKA_ID repeats the label so tools that pair keys by id (openssl's pkcs11
 * providers, the layered module) see the two halves as one key.
 */
static CK_RV keys_pair_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
				CK_MECHANISM *mech, CK_ATTRIBUTE *pub_extra,
				CK_ULONG n_pub_extra, const char *label,
				CK_OBJECT_HANDLE *priv, CK_OBJECT_HANDLE *pub)
{
	CK_ATTRIBUTE pub_tmpl[8] = {
		KEYS_ATTR_BOOL(CKA_TOKEN),
		KEYS_ATTR_BOOL(CKA_VERIFY),
		KEYS_ATTR_LABEL(label),
		{ CKA_ID, (void *)label, (CK_ULONG)strlen(label) },
	};
	CK_ATTRIBUTE priv_tmpl[] = {
		KEYS_ATTR_BOOL(CKA_TOKEN),
		KEYS_ATTR_BOOL(CKA_PRIVATE),
		KEYS_ATTR_BOOL(CKA_SENSITIVE),
		KEYS_ATTR_BOOL(CKA_SIGN),
		KEYS_ATTR_LABEL(label),
		{ CKA_ID, (void *)label, (CK_ULONG)strlen(label) },
	};
	CK_ULONG n_pub = 4, k;

	for (k = 0; k < n_pub_extra && n_pub < 8; k++)
		pub_tmpl[n_pub++] = pub_extra[k];
	return fn->C_GenerateKeyPair(s, mech, pub_tmpl, n_pub, priv_tmpl,
				     sizeof(priv_tmpl) / sizeof(priv_tmpl[0]),
				     pub, priv);
}

CK_RV keys_ec_p256_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			    const char *label, CK_OBJECT_HANDLE *priv,
			    CK_OBJECT_HANDLE *pub)
{
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE extra[] = {
		{ CKA_EC_PARAMS, (void *)keys_oid_p256, sizeof(keys_oid_p256) },
	};

	return keys_pair_generate(fn, s, &mech, extra, 1, label, priv, pub);
}

/* The same pair at cmkp11's protection level SOFTWARE (fails on other modules). */
CK_RV keys_ec_p256_software_generate(CK_FUNCTION_LIST_PTR fn,
				     CK_SESSION_HANDLE s, const char *label,
				     CK_OBJECT_HANDLE *priv,
				     CK_OBJECT_HANDLE *pub)
{
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG level = CMK_PROTECTION_SOFTWARE;
	CK_ATTRIBUTE extra[] = {
		{ CKA_EC_PARAMS, (void *)keys_oid_p256, sizeof(keys_oid_p256) },
		{ CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level) },
	};

	return keys_pair_generate(fn, s, &mech, extra, 2, label, priv, pub);
}

/* An SM2 pair (cmkp11 SOFTWARE only: the backend has no SM2). */
CK_RV keys_sm2_software_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
				 const char *label, CK_OBJECT_HANDLE *priv,
				 CK_OBJECT_HANDLE *pub)
{
	CK_MECHANISM mech = { CKM_CMK_SM2_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG level = CMK_PROTECTION_SOFTWARE;
	CK_ATTRIBUTE extra[] = {
		{ CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level) },
	};

	return keys_pair_generate(fn, s, &mech, extra, 1, label, priv, pub);
}

CK_RV keys_rsa_2048_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			     const char *label, CK_OBJECT_HANDLE *priv,
			     CK_OBJECT_HANDLE *pub)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE extra[] = {
		{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
		{ CKA_PUBLIC_EXPONENT, (void *)keys_rsa_exponent,
		  sizeof(keys_rsa_exponent) },
	};

	return keys_pair_generate(fn, s, &mech, extra, 2, label, priv, pub);
}

/* A secret key of len bytes made by gen (AES-256, or cmkp11's SM4). */
static CK_RV keys_secret_make(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			      const char *label, CK_MECHANISM_TYPE gen,
			      CK_ULONG len, CK_ULONG level,
			      CK_OBJECT_HANDLE *key)
{
	CK_MECHANISM mech = { gen, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CMK_PROTECTION_LEVEL, &level, sizeof(level) },
		KEYS_ATTR_BOOL(CKA_TOKEN),
		KEYS_ATTR_BOOL(CKA_PRIVATE),
		KEYS_ATTR_BOOL(CKA_SENSITIVE),
		KEYS_ATTR_BOOL(CKA_ENCRYPT),
		KEYS_ATTR_BOOL(CKA_DECRYPT),
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		KEYS_ATTR_LABEL(label),
	};

	/* Without a level: the template stays standard for any module. */
	return fn->C_GenerateKey(s, &mech, level ? tmpl : tmpl + 1,
				 sizeof(tmpl) / sizeof(tmpl[0]) - (level ? 0 : 1),
				 key);
}

static CK_RV keys_aes_256_make(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			       const char *label, CK_ULONG level,
			       CK_OBJECT_HANDLE *key)
{
	return keys_secret_make(fn, s, label, CKM_AES_KEY_GEN, 32, level, key);
}

CK_RV keys_aes_256_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			    const char *label, CK_OBJECT_HANDLE *key)
{
	return keys_aes_256_make(fn, s, label, 0, key);
}

int keys_pair_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
		     const char *label, keys_pair_gen_fn gen,
		     CK_OBJECT_HANDLE *priv, CK_OBJECT_HANDLE *pub)
{
	CK_ULONG n;
	CK_RV rv;

	*priv = *pub = CK_INVALID_HANDLE;
	if (p11_object_find_labelled(fn, s, CKO_PRIVATE_KEY, label, priv,
				     &n) != CKR_OK)
		return -1;
	if (n == 0) {
		rv = gen(fn, s, label, priv, pub);
		if (rv != CKR_OK) {
			p11_report(label, "C_GenerateKeyPair", rv);
			return -1;
		}
		return 0;
	}
	/* A module may not expose the public half; only verify needs it. */
	if (p11_object_find_labelled(fn, s, CKO_PUBLIC_KEY, label, pub,
				     &n) != CKR_OK)
		return -1;
	if (n == 0)
		*pub = CK_INVALID_HANDLE;
	return 0;
}

/* Finds the secret key labelled label, or makes it with gen and len at protection
 * level (0 = none asked). */
static int keys_secret_ensure_level(CK_FUNCTION_LIST_PTR fn,
				    CK_SESSION_HANDLE s, const char *label,
				    CK_MECHANISM_TYPE gen, CK_ULONG len,
				    CK_ULONG level, CK_OBJECT_HANDLE *key)
{
	CK_ULONG n;
	CK_RV rv;

	if (p11_object_find_labelled(fn, s, CKO_SECRET_KEY, label, key,
				     &n) != CKR_OK)
		return -1;
	if (n > 0)
		return 0;
	rv = keys_secret_make(fn, s, label, gen, len, level, key);
	if (rv != CKR_OK) {
		p11_report(label, "C_GenerateKey", rv);
		return -1;
	}
	return 0;
}

int keys_aes_256_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			const char *label, CK_OBJECT_HANDLE *key)
{
	return keys_secret_ensure_level(fn, s, label, CKM_AES_KEY_GEN, 32, 0,
					key);
}

int keys_aes_256_software_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
				 CK_OBJECT_HANDLE *key)
{
	return keys_secret_ensure_level(fn, s, KEYS_LABEL_AES_SOFTWARE,
					CKM_AES_KEY_GEN, 32,
					CMK_PROTECTION_SOFTWARE, key);
}

int keys_sm4_software_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			     CK_OBJECT_HANDLE *key)
{
	return keys_secret_ensure_level(fn, s, KEYS_LABEL_SM4_SOFTWARE,
					CKM_CMK_SM4_KEY_GEN, 16,
					CMK_PROTECTION_SOFTWARE, key);
}

void keys_objects_label(char *buf, size_t len, unsigned long i)
{
	snprintf(buf, len, "bench-obj-%lu", i);
}

/*
 * Marks in seen[] (n entries) every index i for which a secret key labelled
 * bench-obj-<i> exists.  One enumeration of the token's secret keys plus one
 * C_GetAttributeValue per key: a find per index would cost O(N) each on a
 * backend whose finds scan the token (SoftHSMv2), O(N^2) for the whole set.
 */
static int keys_objects_scan(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			     unsigned long n, unsigned char *seen)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE *all = NULL, *p;
	size_t len = 0, cap = 0, k;
	CK_ULONG got;
	CK_RV rv, rv_final;

	rv = fn->C_FindObjectsInit(s, tmpl, 1);
	if (rv != CKR_OK) {
		p11_report("bench-obj scan", "C_FindObjectsInit", rv);
		return -1;
	}
	for (;;) {
		if (cap - len < 256) {
			cap = cap ? cap * 2 : 1024;
			p = realloc(all, cap * sizeof(*p));
			if (!p) {
				rv = CKR_HOST_MEMORY;
				break;
			}
			all = p;
		}
		rv = fn->C_FindObjects(s, all + len, 256, &got);
		if (rv != CKR_OK || got == 0)
			break;
		len += got;
	}
	rv_final = fn->C_FindObjectsFinal(s);
	if (rv != CKR_OK || rv_final != CKR_OK) {
		p11_report("bench-obj scan", "C_FindObjects",
			   rv != CKR_OK ? rv : rv_final);
		free(all);
		return -1;
	}
	for (k = 0; k < len; k++) {
		char label[KEYS_LABEL_MAX + 1], *end;
		CK_ATTRIBUTE a = { CKA_LABEL, label, KEYS_LABEL_MAX };
		unsigned long i;

		if (fn->C_GetAttributeValue(s, all[k], &a, 1) != CKR_OK ||
		    a.ulValueLen >= KEYS_LABEL_MAX)
			continue;
		label[a.ulValueLen] = '\0';
		if (strncmp(label, "bench-obj-", 10) != 0 || !label[10])
			continue;
		i = strtoul(label + 10, &end, 10);
		if (*end == '\0' && i < n)
			seen[i] = 1;
	}
	free(all);
	return 0;
}

/*
 * Objects are made in index order, so the last one existing means an
 * earlier run completed; only then is the scan skipped.  Progress (with the
 * creation rate) goes to stderr every 1,000 keys made.
 */
int keys_objects_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			unsigned long n, CK_ULONG level)
{
	char label[KEYS_LABEL_MAX];
	unsigned long i, made = 0;
	unsigned char *seen;
	uint64_t t_start, t_mark;
	CK_OBJECT_HANDLE h;
	CK_ULONG found;
	CK_RV rv;

	if (n == 0)
		return 0;
	keys_objects_label(label, sizeof(label), n - 1);
	if (p11_object_find_labelled(fn, s, CKO_SECRET_KEY, label, &h,
				     &found) != CKR_OK)
		return -1;
	if (found)
		return 0;
	seen = calloc(n, 1);
	if (!seen)
		return -1;
	if (keys_objects_scan(fn, s, n, seen) != 0) {
		free(seen);
		return -1;
	}
	t_start = t_mark = clock_now_ns();
	for (i = 0; i < n; i++) {
		if (seen[i])
			continue;
		keys_objects_label(label, sizeof(label), i);
		rv = keys_aes_256_make(fn, s, label, level, &h);
		if (rv != CKR_OK) {
			p11_report(label, "C_GenerateKey", rv);
			free(seen);
			return -1;
		}
		if (++made % 1000 == 0) {
			uint64_t now = clock_now_ns();

			fprintf(stderr,
				"cmkbench: bench-obj: %lu made (up to index "
				"%lu), %.1f s, last 1000 at %.1f/s\n",
				made, i, (double)(now - t_start) / 1e9,
				1000.0 / ((double)(now - t_mark) / 1e9));
			t_mark = now;
		}
	}
	free(seen);
	fprintf(stderr,
		"cmkbench: created %lu of %lu bench-obj-* keys in %.1f s\n",
		made, n, (double)(clock_now_ns() - t_start) / 1e9);
	return 0;
}
