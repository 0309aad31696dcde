/*
 * Thin PKCS#11 helpers shared by the benchmark and its child mode.
 */
#include "bench_p11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define P11_LABEL_LEN 32
#define P11_MAX_SLOTS 256

void p11_report(const char *where, const char *fn_name, CK_RV rv)
{
	fprintf(stderr, "cmkbench: %s: %s failed: rv=0x%08lx\n", where,
		fn_name, (unsigned long)rv);
}

int p11_module_load(const char *path, void **dl, CK_FUNCTION_LIST_PTR *fn)
{
	CK_C_GetFunctionList get_list;
	CK_RV rv;

	*dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!*dl) {
		fprintf(stderr, "cmkbench: dlopen %s: %s\n", path, dlerror());
		return -1;
	}
	get_list = (CK_C_GetFunctionList)dlsym(*dl, "C_GetFunctionList");
	if (!get_list) {
		fprintf(stderr, "cmkbench: %s has no C_GetFunctionList\n", path);
		return -1;
	}
	rv = get_list(fn);
	if (rv != CKR_OK) {
		p11_report(path, "C_GetFunctionList", rv);
		return -1;
	}
	return 0;
}

CK_RV p11_module_initialize(CK_FUNCTION_LIST_PTR fn)
{
	CK_C_INITIALIZE_ARGS args;

	/* Worker threads share the module, so it must do its own locking. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	return fn->C_Initialize(&args);
}

/* CK_TOKEN_INFO labels are blank padded, never NUL terminated. */
static int p11_label_matches(const CK_UTF8CHAR *field, const char *want)
{
	char padded[P11_LABEL_LEN];
	size_t n = strlen(want);

	if (n > P11_LABEL_LEN)
		return 0;
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, want, n);
	return memcmp(field, padded, P11_LABEL_LEN) == 0;
}

static int p11_slot_accepts(CK_FUNCTION_LIST_PTR fn, CK_SLOT_ID slot,
			    const char *label)
{
	CK_TOKEN_INFO info;

	if (fn->C_GetTokenInfo(slot, &info) != CKR_OK)
		return 0;
	if (label)
		return p11_label_matches(info.label, label);
	/* Without a label, skip the spare uninitialised token SoftHSM shows. */
	return (info.flags & CKF_TOKEN_INITIALIZED) != 0;
}

int p11_slot_resolve(CK_FUNCTION_LIST_PTR fn,
		     const struct p11_slot_choice *choice, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = P11_MAX_SLOTS, k;
	CK_RV rv;

	if (choice->have_slot_id) {
		*out = choice->slot_id;
		if (p11_slot_accepts(fn, *out, choice->token_label))
			return 0;
		fprintf(stderr, "cmkbench: slot %lu has no usable token\n",
			(unsigned long)*out);
		return -1;
	}
	rv = fn->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		p11_report("slot lookup", "C_GetSlotList", rv);
		return -1;
	}
	for (k = 0; k < n; k++) {
		if (p11_slot_accepts(fn, slots[k], choice->token_label)) {
			*out = slots[k];
			return 0;
		}
	}
	fprintf(stderr, "cmkbench: no token labelled '%s'\n",
		choice->token_label ? choice->token_label : "(any)");
	return -1;
}

CK_RV p11_session_open(CK_FUNCTION_LIST_PTR fn, CK_SLOT_ID slot,
		       CK_SESSION_HANDLE *out)
{
	return fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				 NULL, NULL, out);
}

CK_RV p11_session_login(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			const char *pin)
{
	CK_RV rv;

	rv = fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin,
			 (CK_ULONG)strlen(pin));
	/* Login state is per application, another session may hold it. */
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV p11_object_find(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
		      CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
		      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *nfound,
		      const char **failed_fn)
{
	CK_RV rv, rv_final;

	*nfound = 0;
	rv = fn->C_FindObjectsInit(s, tmpl, ntmpl);
	if (rv != CKR_OK) {
		*failed_fn = "C_FindObjectsInit";
		return rv;
	}
	rv = fn->C_FindObjects(s, found, max, nfound);
	/* Final runs even after a failed search so the session stays usable. */
	rv_final = fn->C_FindObjectsFinal(s);
	if (rv != CKR_OK) {
		*failed_fn = "C_FindObjects";
		return rv;
	}
	if (rv_final != CKR_OK)
		*failed_fn = "C_FindObjectsFinal";
	return rv_final;
}

CK_RV p11_object_find_labelled(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			       CK_OBJECT_CLASS cls, const char *label,
			       CK_OBJECT_HANDLE *found, CK_ULONG *nfound)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, (CK_ULONG)strlen(label) },
	};
	const char *failed_fn = NULL;
	CK_RV rv;

	rv = p11_object_find(fn, s, tmpl, 2, found, 1, nfound, &failed_fn);
	if (rv != CKR_OK)
		p11_report(label, failed_fn, rv);
	return rv;
}
