/*
 * Key templates and the reuse-or-create logic for the long-lived keys.
 */
#include "bench_keys.h"
#include "bench_p11.h"

#include <stdio.h>
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

CK_RV keys_aes_256_generate(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			    const char *label, CK_OBJECT_HANDLE *key)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE tmpl[] = {
		KEYS_ATTR_BOOL(CKA_TOKEN),
		KEYS_ATTR_BOOL(CKA_PRIVATE),
		KEYS_ATTR_BOOL(CKA_SENSITIVE),
		KEYS_ATTR_BOOL(CKA_ENCRYPT),
		KEYS_ATTR_BOOL(CKA_DECRYPT),
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		KEYS_ATTR_LABEL(label),
	};

	return fn->C_GenerateKey(s, &mech, tmpl,
				 sizeof(tmpl) / sizeof(tmpl[0]), key);
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

int keys_aes_256_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			const char *label, CK_OBJECT_HANDLE *key)
{
	CK_ULONG n;
	CK_RV rv;

	if (p11_object_find_labelled(fn, s, CKO_SECRET_KEY, label, key,
				     &n) != CKR_OK)
		return -1;
	if (n > 0)
		return 0;
	rv = keys_aes_256_generate(fn, s, label, key);
	if (rv != CKR_OK) {
		p11_report(label, "C_GenerateKey", rv);
		return -1;
	}
	return 0;
}

void keys_objects_label(char *buf, size_t len, unsigned long i)
{
	snprintf(buf, len, "bench-obj-%lu", i);
}

static int keys_object_present(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			       unsigned long i, int *present)
{
	char label[KEYS_LABEL_MAX];
	CK_OBJECT_HANDLE h;
	CK_ULONG n;

	keys_objects_label(label, sizeof(label), i);
	if (p11_object_find_labelled(fn, s, CKO_SECRET_KEY, label, &h, &n) !=
	    CKR_OK)
		return -1;
	*present = n > 0;
	return 0;
}

/*
 * Objects are made in index order, so the last one existing means an
 * earlier run completed; only then is the per-object scan skipped.
 */
int keys_objects_ensure(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			unsigned long n)
{
	char label[KEYS_LABEL_MAX];
	unsigned long i, made = 0;
	CK_OBJECT_HANDLE h;
	int present;
	CK_RV rv;

	if (n == 0)
		return 0;
	if (keys_object_present(fn, s, n - 1, &present) != 0)
		return -1;
	if (present)
		return 0;
	for (i = 0; i < n; i++) {
		if (keys_object_present(fn, s, i, &present) != 0)
			return -1;
		if (present)
			continue;
		keys_objects_label(label, sizeof(label), i);
		rv = keys_aes_256_generate(fn, s, label, &h);
		if (rv != CKR_OK) {
			p11_report(label, "C_GenerateKey", rv);
			return -1;
		}
		made++;
	}
	fprintf(stderr, "cmkbench: created %lu of %lu bench-obj-* keys\n",
		made, n);
	return 0;
}
