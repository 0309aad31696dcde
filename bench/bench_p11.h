/*
 * Thin PKCS#11 helpers: loading a module, picking the slot, sessions and
 * object lookup.  Nothing here knows about workloads.
 */
#ifndef CMKBENCH_P11_H
#define CMKBENCH_P11_H

#include <p11-kit/pkcs11.h>

struct p11_slot_choice {
	const char *token_label; /* NULL: use slot_id or the first token */
	int have_slot_id;
	CK_SLOT_ID slot_id;
};

int p11_module_load(const char *path, void **dl, CK_FUNCTION_LIST_PTR *fn);
CK_RV p11_module_initialize(CK_FUNCTION_LIST_PTR fn);
int p11_slot_resolve(CK_FUNCTION_LIST_PTR fn,
		     const struct p11_slot_choice *choice, CK_SLOT_ID *out);
CK_RV p11_session_open(CK_FUNCTION_LIST_PTR fn, CK_SLOT_ID slot,
		       CK_SESSION_HANDLE *out);
CK_RV p11_session_login(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			const char *pin);
CK_RV p11_object_find(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
		      CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
		      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *nfound,
		      const char **failed_fn);
CK_RV p11_object_find_labelled(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s,
			       CK_OBJECT_CLASS cls, const char *label,
			       CK_OBJECT_HANDLE *found, CK_ULONG *nfound);
void p11_report(const char *where, const char *fn_name, CK_RV rv);

#endif
