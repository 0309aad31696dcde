/*
 * Workload setups and ops.  An op is the unit that is timed; anything it
 * needs that is not part of the cost being measured is prepared in setup.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_workloads.h"
#include "bench_child.h"
#include "bench_keys.h"
#include "bench_p11.h"
#include "bench_run.h"

#include "cmkp11/cmkp11.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WL_EC_DIGEST_LEN 32
#define WL_RSA_DATA_LEN 64

static const unsigned char wl_plain[BENCH_GCM_PLAIN_LEN];

static CK_FUNCTION_LIST_PTR wl_fn(const struct bench_thread *t)
{
	return t->sh->env->fn;
}

static int wl_check(struct bench_thread *t, const char *fn_name, CK_RV rv)
{
	if (rv == CKR_OK)
		return 0;
	run_thread_fail(t, fn_name, rv);
	return -1;
}

/* ---- signing and verification ---- */

static int wl_sign(struct bench_thread *t, CK_MECHANISM_TYPE mech_type)
{
	CK_MECHANISM mech = { mech_type, NULL, 0 };
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	struct wl_shared *sh = t->sh;
	unsigned char sig[BENCH_SIG_MAX];
	CK_ULONG sig_len = sizeof(sig);

	if (wl_check(t, "C_SignInit",
		     fn->C_SignInit(t->session, &mech, sh->priv)))
		return -1;
	return wl_check(t, "C_Sign",
			fn->C_Sign(t->session, sh->data, sh->data_len, sig,
				   &sig_len));
}

/* A key pair's workload data: a digest-sized block of 0x5a to sign. */
static int wl_pair_setup(struct wl_shared *sh, const char *label,
			 keys_pair_gen_fn gen)
{
	memset(sh->data, 0x5a, WL_EC_DIGEST_LEN);
	sh->data_len = WL_EC_DIGEST_LEN;
	return keys_pair_ensure(sh->env->fn, sh->env->session, label, gen,
				&sh->priv, &sh->pub);
}

static int wl_ec_setup(struct wl_shared *sh)
{
	return wl_pair_setup(sh, KEYS_LABEL_EC, keys_ec_p256_generate);
}

/* cmkp11's protection level SOFTWARE: the same ECDSA P-256, run in the module. */
static int wl_ec_software_setup(struct wl_shared *sh)
{
	return wl_pair_setup(sh, KEYS_LABEL_EC_SOFTWARE,
			     keys_ec_p256_software_generate);
}

static int wl_sm2_software_setup(struct wl_shared *sh)
{
	return wl_pair_setup(sh, KEYS_LABEL_SM2_SOFTWARE,
			     keys_sm2_software_generate);
}

static int wl_sign_sm2_op(struct bench_thread *t, unsigned long i)
{
	(void)i;
	return wl_sign(t, CKM_CMK_SM2_SM3);
}

static int wl_rsa_setup(struct wl_shared *sh)
{
	memset(sh->data, 0xa5, WL_RSA_DATA_LEN);
	sh->data_len = WL_RSA_DATA_LEN;
	return keys_pair_ensure(sh->env->fn, sh->env->session, KEYS_LABEL_RSA,
				keys_rsa_2048_generate, &sh->priv, &sh->pub);
}

static int wl_sign_ec_op(struct bench_thread *t, unsigned long i)
{
	(void)i;
	return wl_sign(t, CKM_ECDSA);
}

static int wl_sign_rsa_op(struct bench_thread *t, unsigned long i)
{
	(void)i;
	return wl_sign(t, CKM_SHA256_RSA_PKCS);
}

/* The signature to verify is made once here so the op is verify only. */
static int wl_verify_setup_with(struct wl_shared *sh,
				int (*pair_setup)(struct wl_shared *))
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_FUNCTION_LIST_PTR fn = sh->env->fn;
	CK_SESSION_HANDLE s = sh->env->session;
	CK_RV rv;

	if (pair_setup(sh) != 0)
		return -1;
	if (sh->pub == CK_INVALID_HANDLE) {
		fprintf(stderr, "cmkbench: the key pair has no public key\n");
		return -1;
	}
	sh->sig_len = sizeof(sh->sig);
	rv = fn->C_SignInit(s, &mech, sh->priv);
	if (rv == CKR_OK)
		rv = fn->C_Sign(s, sh->data, sh->data_len, sh->sig,
				&sh->sig_len);
	if (rv != CKR_OK) {
		p11_report("verify setup", "C_Sign", rv);
		return -1;
	}
	return 0;
}

static int wl_verify_setup(struct wl_shared *sh)
{
	return wl_verify_setup_with(sh, wl_ec_setup);
}

static int wl_verify_software_setup(struct wl_shared *sh)
{
	return wl_verify_setup_with(sh, wl_ec_software_setup);
}

static int wl_verify_op(struct bench_thread *t, unsigned long i)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	struct wl_shared *sh = t->sh;

	(void)i;
	if (wl_check(t, "C_VerifyInit",
		     fn->C_VerifyInit(t->session, &mech, sh->pub)))
		return -1;
	return wl_check(t, "C_Verify",
			fn->C_Verify(t->session, sh->data, sh->data_len,
				     sh->sig, sh->sig_len));
}

/* ---- AES-GCM ---- */

static void wl_gcm_params(CK_GCM_PARAMS *p, unsigned char *iv)
{
	memset(p, 0, sizeof(*p));
	p->pIv = iv;
	p->ulIvLen = BENCH_GCM_IV_LEN;
	p->ulIvBits = BENCH_GCM_IV_LEN * 8;
	p->ulTagBits = BENCH_GCM_TAG_LEN * 8;
}

/* Thread index plus op number: unique per key for the whole run, as GCM
 * requires, without any shared counter between threads. */
static void wl_gcm_iv(unsigned char *iv, unsigned thread, unsigned long i)
{
	uint64_t n = (uint64_t)i;
	int k;

	for (k = 0; k < 4; k++)
		iv[k] = (unsigned char)(thread >> (24 - 8 * k));
	for (k = 0; k < 8; k++)
		iv[4 + k] = (unsigned char)(n >> (56 - 8 * k));
}

static int wl_aes_setup(struct wl_shared *sh)
{
	return keys_aes_256_ensure(sh->env->fn, sh->env->session,
				   KEYS_LABEL_AES, &sh->secret);
}

/* One GCM ciphertext of the sample plaintext under key, made in setup. */
static int wl_gcm_sample(struct wl_shared *sh, CK_OBJECT_HANDLE key)
{
	CK_FUNCTION_LIST_PTR fn = sh->env->fn;
	CK_SESSION_HANDLE s = sh->env->session;
	CK_MECHANISM mech = { CKM_AES_GCM, NULL, 0 };
	CK_GCM_PARAMS gcm;
	CK_RV rv;

	memset(sh->iv, 0xc3, sizeof(sh->iv));
	wl_gcm_params(&gcm, sh->iv);
	mech.pParameter = &gcm;
	mech.ulParameterLen = sizeof(gcm);
	sh->cipher_len = sizeof(sh->cipher);
	rv = fn->C_EncryptInit(s, &mech, key);
	if (rv == CKR_OK)
		rv = fn->C_Encrypt(s, (CK_BYTE_PTR)wl_plain, sizeof(wl_plain),
				   sh->cipher, &sh->cipher_len);
	if (rv != CKR_OK) {
		p11_report("decrypt setup", "C_Encrypt", rv);
		return -1;
	}
	return 0;
}

static int wl_decrypt_setup(struct wl_shared *sh)
{
	if (wl_aes_setup(sh) != 0)
		return -1;
	return wl_gcm_sample(sh, sh->secret);
}

/*
 * Old data under a rotated key (cmkp11's vendor rotation, CKA_CMK_ROTATE_NOW):
 * the sample is encrypted under the key's primary version, then the key is
 * rotated WL_ROTATIONS times, so each timed C_Decrypt of it has to fall back
 * through every newer version before the tag verifies.  A module without
 * rotation (the backend alone) fails this setup and reports nothing.
 */
#define WL_ROTATIONS 3

static int wl_decrypt_old_setup(struct wl_shared *sh)
{
	CK_FUNCTION_LIST_PTR fn = sh->env->fn;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE now = { CKA_CMK_ROTATE_NOW, &yes, sizeof(yes) };
	int k;

	if (keys_aes_256_ensure(fn, sh->env->session, KEYS_LABEL_AES_ROTATED,
				&sh->secret) != 0 ||
	    wl_gcm_sample(sh, sh->secret) != 0)
		return -1;
	for (k = 0; k < WL_ROTATIONS; k++) {
		CK_RV rv = fn->C_SetAttributeValue(sh->env->session, sh->secret,
						   &now, 1);
		if (rv != CKR_OK) {
			p11_report("decrypt-aes-gcm-old setup (rotation)",
				   "C_SetAttributeValue", rv);
			return -1;
		}
	}
	return 0;
}

/* cmkp11's protection level SOFTWARE: the same AES-GCM, run in the module. */
static int wl_aes_software_setup(struct wl_shared *sh)
{
	return keys_aes_256_software_ensure(sh->env->fn, sh->env->session,
					    &sh->secret);
}

/* cmkp11's SM4 (SOFTWARE level): CBC over the same 4 KiB, no padding. */
static int wl_sm4_software_setup(struct wl_shared *sh)
{
	return keys_sm4_software_ensure(sh->env->fn, sh->env->session,
					&sh->secret);
}

/* One-shot encryption of the 4 KiB workload plaintext with the shared secret key. */
static int wl_encrypt_plain(struct bench_thread *t, CK_MECHANISM *mech,
			    unsigned char *out, CK_ULONG *out_len)
{
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);

	if (wl_check(t, "C_EncryptInit",
		     fn->C_EncryptInit(t->session, mech, t->sh->secret)))
		return -1;
	return wl_check(t, "C_Encrypt",
			fn->C_Encrypt(t->session, (CK_BYTE_PTR)wl_plain,
				      sizeof(wl_plain), out, out_len));
}

static int wl_encrypt_sm4_cbc_op(struct bench_thread *t, unsigned long i)
{
	unsigned char iv[16] = { 0 };
	unsigned char out[BENCH_GCM_PLAIN_LEN];
	CK_ULONG out_len = sizeof(out);
	CK_MECHANISM mech = { CKM_CMK_SM4_CBC, iv, sizeof(iv) };

	wl_gcm_iv(iv, t->index, i);
	return wl_encrypt_plain(t, &mech, out, &out_len);
}

static int wl_encrypt_op(struct bench_thread *t, unsigned long i)
{
	unsigned char iv[BENCH_GCM_IV_LEN];
	unsigned char out[BENCH_GCM_PLAIN_LEN + BENCH_GCM_TAG_LEN];
	CK_ULONG out_len = sizeof(out);
	CK_MECHANISM mech = { CKM_AES_GCM, NULL, 0 };
	CK_GCM_PARAMS gcm;

	wl_gcm_iv(iv, t->index, i);
	wl_gcm_params(&gcm, iv);
	mech.pParameter = &gcm;
	mech.ulParameterLen = sizeof(gcm);
	return wl_encrypt_plain(t, &mech, out, &out_len);
}

static int wl_decrypt_op(struct bench_thread *t, unsigned long i)
{
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	struct wl_shared *sh = t->sh;
	/* Sized for the ciphertext: some modules check the output buffer
	 * against the input length before removing the tag. */
	unsigned char out[BENCH_GCM_PLAIN_LEN + BENCH_GCM_TAG_LEN];
	CK_ULONG out_len = sizeof(out);
	CK_MECHANISM mech = { CKM_AES_GCM, NULL, 0 };
	CK_GCM_PARAMS gcm;

	(void)i;
	wl_gcm_params(&gcm, sh->iv);
	mech.pParameter = &gcm;
	mech.ulParameterLen = sizeof(gcm);
	if (wl_check(t, "C_DecryptInit",
		     fn->C_DecryptInit(t->session, &mech, sh->secret)))
		return -1;
	if (wl_check(t, "C_Decrypt",
		     fn->C_Decrypt(t->session, sh->cipher, sh->cipher_len,
				   out, &out_len)))
		return -1;
	if (out_len != BENCH_GCM_PLAIN_LEN) {
		run_thread_fail_msg(t, "C_Decrypt returned a wrong length");
		return -1;
	}
	return 0;
}

/* ---- key generation ---- */

static int wl_keygen_setup(struct wl_shared *sh)
{
	sh->pid = (long)getpid();
	return 0;
}

static int wl_keygen_aes_op(struct bench_thread *t, unsigned long i)
{
	char label[KEYS_LABEL_MAX];
	CK_OBJECT_HANDLE h;

	snprintf(label, sizeof(label), "bench-gen-%ld-%u-%lu", t->sh->pid,
		 t->index, i);
	if (wl_check(t, "C_GenerateKey",
		     keys_aes_256_generate(wl_fn(t), t->session, label, &h)))
		return -1;
	if (run_thread_remember(t, h) != 0)
		fprintf(stderr, "cmkbench: cannot track %s for cleanup\n",
			label);
	return 0;
}

static int wl_keygen_ec_op(struct bench_thread *t, unsigned long i)
{
	char label[KEYS_LABEL_MAX];
	CK_OBJECT_HANDLE priv, pub;

	snprintf(label, sizeof(label), "bench-gen-ec-%ld-%u-%lu", t->sh->pid,
		 t->index, i);
	if (wl_check(t, "C_GenerateKeyPair",
		     keys_ec_p256_generate(wl_fn(t), t->session, label, &priv,
					   &pub)))
		return -1;
	if (run_thread_remember(t, priv) != 0 ||
	    run_thread_remember(t, pub) != 0)
		fprintf(stderr, "cmkbench: cannot track %s for cleanup\n",
			label);
	return 0;
}

/* Runs after the timed loop; a layered module may only schedule these. */
static void wl_keygen_cleanup(struct bench_thread *t)
{
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	unsigned long failed = 0;
	CK_RV rv, first = CKR_OK;
	size_t k;

	for (k = 0; k < t->created.len; k++) {
		rv = fn->C_DestroyObject(t->session, t->created.items[k]);
		if (rv != CKR_OK && failed++ == 0)
			first = rv;
	}
	if (failed)
		fprintf(stderr,
			"cmkbench: %s: %lu generated objects not destroyed "
			"(first rv=0x%08lx)\n",
			t->sh->wl->name, failed, (unsigned long)first);
	t->created.len = 0;
}

/* ---- object lookup ---- */

static int wl_find_setup(struct wl_shared *sh)
{
	if (sh->env->objects > 0)
		return 0;
	fprintf(stderr, "cmkbench: find-by-label needs --objects N (N > 0)\n");
	return -1;
}

static int wl_find_op(struct bench_thread *t, unsigned long i)
{
	char label[KEYS_LABEL_MAX];
	CK_OBJECT_HANDLE found[2];
	CK_ULONG nfound;
	const char *failed_fn = NULL;
	CK_ATTRIBUTE tmpl[1];
	CK_RV rv;

	(void)i;
	keys_objects_label(label, sizeof(label),
			   run_thread_rand(t) % t->sh->env->objects);
	tmpl[0].type = CKA_LABEL;
	tmpl[0].pValue = label;
	tmpl[0].ulValueLen = (CK_ULONG)strlen(label);
	rv = p11_object_find(wl_fn(t), t->session, tmpl, 1, found, 2, &nfound,
			     &failed_fn);
	if (rv != CKR_OK)
		return wl_check(t, failed_fn, rv);
	if (nfound != 1) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s: found %lu objects, want 1",
			 label, (unsigned long)nfound);
		run_thread_fail_msg(t, msg);
		return -1;
	}
	return 0;
}

static int wl_first_sign_op(struct bench_thread *t, unsigned long i)
{
	char msg[64];
	int status;

	(void)i;
	status = child_spawn_wait(t->sh->env->child_argv);
	if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (status < 0)
		snprintf(msg, sizeof(msg), "fork/waitpid failed");
	else if (WIFEXITED(status))
		snprintf(msg, sizeof(msg), "child exited with %d",
			 WEXITSTATUS(status));
	else
		snprintf(msg, sizeof(msg), "child died, status 0x%x", status);
	run_thread_fail_msg(t, msg);
	return -1;
}

/* ---- module and session lifetime ---- */

/* Error paths still finalise so the next op can initialise again. */
static int wl_init_login_op(struct bench_thread *t, unsigned long i)
{
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	const struct bench_env *env = t->sh->env;
	CK_SESSION_HANDLE s;
	int rc = -1;

	(void)i;
	if (wl_check(t, "C_Initialize", p11_module_initialize(fn)))
		return -1;
	if (wl_check(t, "C_OpenSession", p11_session_open(fn, env->slot, &s)))
		goto out;
	if (wl_check(t, "C_Login", p11_session_login(fn, s, env->pin)) == 0 &&
	    wl_check(t, "C_Logout", fn->C_Logout(s)) == 0)
		rc = 0;
	if (wl_check(t, "C_CloseSession", fn->C_CloseSession(s)))
		rc = -1;
out:
	if (wl_check(t, "C_Finalize", fn->C_Finalize(NULL)))
		rc = -1;
	return rc;
}

static int wl_session_op(struct bench_thread *t, unsigned long i)
{
	CK_FUNCTION_LIST_PTR fn = wl_fn(t);
	CK_SESSION_HANDLE s;

	(void)i;
	if (wl_check(t, "C_OpenSession",
		     p11_session_open(fn, t->sh->env->slot, &s)))
		return -1;
	return wl_check(t, "C_CloseSession", fn->C_CloseSession(s));
}

static const struct workload wl_table[] = {
	{ "sign-ecdsa-p256", WL_NEEDS_SESSION, wl_ec_setup, wl_sign_ec_op,
	  NULL },
	{ "sign-rsa-2048", WL_NEEDS_SESSION, wl_rsa_setup, wl_sign_rsa_op,
	  NULL },
	{ "sign-ecdsa-p256-software", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_ec_software_setup, wl_sign_ec_op, NULL },
	{ "sign-sm2-software", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_sm2_software_setup, wl_sign_sm2_op, NULL },
	{ "verify-ecdsa-p256", WL_NEEDS_SESSION, wl_verify_setup,
	  wl_verify_op, NULL },
	{ "verify-ecdsa-p256-software", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_verify_software_setup, wl_verify_op, NULL },
	{ "encrypt-aes-gcm-4k", WL_NEEDS_SESSION, wl_aes_setup, wl_encrypt_op,
	  NULL },
	{ "decrypt-aes-gcm-4k", WL_NEEDS_SESSION, wl_decrypt_setup,
	  wl_decrypt_op, NULL },
	{ "decrypt-aes-gcm-old", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_decrypt_old_setup,
	  wl_decrypt_op, NULL },
	{ "encrypt-aes-gcm-4k-software", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_aes_software_setup, wl_encrypt_op, NULL },
	{ "encrypt-sm4-cbc-4k-software", WL_NEEDS_SESSION | WL_CMKP11_ONLY,
	  wl_sm4_software_setup, wl_encrypt_sm4_cbc_op, NULL },
	{ "keygen-aes-token", WL_NEEDS_SESSION, wl_keygen_setup,
	  wl_keygen_aes_op, wl_keygen_cleanup },
	{ "keygen-ec-p256-token", WL_NEEDS_SESSION, wl_keygen_setup,
	  wl_keygen_ec_op, wl_keygen_cleanup },
	{ "find-by-label", WL_NEEDS_SESSION | WL_NEEDS_OBJECTS, wl_find_setup,
	  wl_find_op, NULL },
	{ "find-first-sign", WL_NEEDS_OBJECTS, wl_ec_setup, wl_first_sign_op,
	  NULL },
	{ "init-login-finalize", WL_OWNS_MODULE | WL_NEEDS_OBJECTS, NULL,
	  wl_init_login_op, NULL },
	{ "session-open-close", 0, NULL, wl_session_op, NULL },
};

const struct workload *wl_lookup(const char *name)
{
	size_t k;

	for (k = 0; k < wl_total(); k++)
		if (strcmp(wl_table[k].name, name) == 0)
			return &wl_table[k];
	return NULL;
}

const struct workload *wl_at(size_t i)
{
	return i < wl_total() ? &wl_table[i] : NULL;
}

size_t wl_total(void)
{
	return sizeof(wl_table) / sizeof(wl_table[0]);
}
