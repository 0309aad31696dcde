/* test_bad_input.c - each class of bad input gets the spec's code and changes nothing. */
#include "fixture.h"

#define FAKE_CMK_HANDLE (0x40000000UL | (4242UL << 2) | 1UL)

static CK_BBOOL yes = CK_TRUE;

static void test_null_pointers_are_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &len, sizeof(len)}};
    CK_OBJECT_HANDLE h;
    CHECK_RV(p11->C_GenerateKey(s, NULL, t, 2, &h), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GenerateKey(s, &mech, t, 2, NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GenerateKey(s, &mech, NULL, 2, &h), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GenerateKeyPair(s, &mech, NULL, 0, NULL, 0, NULL, &h), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GetTokenInfo(0, NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GetSlotInfo(0, NULL), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    CK_ULONG n;
    CHECK_RV(p11->C_FindObjects(s, NULL, 1, &n), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OK);
    CHECK_RV(p11->C_GetAttributeValue(s, FAKE_CMK_HANDLE, NULL, 1), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    fixture_close(s);
}

static void test_unknown_and_stale_handles_are_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    char buf[64];
    CHECK_RV(get_text(s, FAKE_CMK_HANDLE, CKA_LABEL, buf, sizeof(buf)), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(set_text(s, FAKE_CMK_HANDLE, CKA_LABEL, "x"), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(p11->C_DestroyObject(s, FAKE_CMK_HANDLE), CKR_OBJECT_HANDLE_INVALID);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &ecdsa, FAKE_CMK_HANDLE), CKR_KEY_HANDLE_INVALID);
    /* A backend handle is the backend's to judge: SoftHSMv2 says OBJECT_HANDLE_INVALID. */
    CK_RV rv = p11->C_SignInit(s, &ecdsa, 987654);
    CHECK(rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID);
    /* The public handle of a secret key's row names no object. */
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "one", NULL, 0, &key), CKR_OK);
    CK_OBJECT_HANDLE wrong_kind = (key & ~3UL) | 3UL;
    CHECK_RV(get_text(s, wrong_kind, CKA_LABEL, buf, sizeof(buf)), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    CHECK_RV(get_text(s, key, CKA_LABEL, buf, sizeof(buf)), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(p11->C_FindObjectsInit(s, NULL, 0), CKR_SESSION_HANDLE_INVALID);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

static void test_operations_in_the_wrong_state_are_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n;
    CHECK_RV(p11->C_FindObjects(s, found, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    CHECK_RV(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    CHECK_RV(p11->C_FindObjectsInit(s, NULL, 0), CKR_OPERATION_ACTIVE);
    CHECK_RV(p11->C_FindObjectsFinal(s), CKR_OK);
    unsigned char sig[128];
    CK_ULONG sig_len = sizeof(sig);
    CHECK_RV(p11->C_Sign(s, sig, 1, sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "logged-out", NULL, 0, &key), CKR_USER_NOT_LOGGED_IN);
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    const char *pin = getenv("CMK_PIN");
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CHECK(find_count(s, NULL, 0, NULL) == 0); /* the refused key left no row behind */
    fixture_close(s);
}

static void test_malformed_templates_are_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CK_ULONG short_len = 32;
    CK_ATTRIBUTE no_value[] = {{CKA_CMK_DESCRIPTION, NULL, 5}};
    CHECK_RV(make_aes(s, "a", no_value, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE wrong_size[] = {{CKA_VALUE_LEN, &short_len, 2}};
    CHECK_RV(make_aes(s, "b", wrong_size, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ULONG origin = 77;
    CK_ATTRIBUTE bad_origin[] = {{CKA_CMK_ORIGIN, &origin, sizeof(origin)}};
    CHECK_RV(make_aes(s, "c", bad_origin, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ULONG state = CMK_STATE_DISABLED;
    CK_ATTRIBUTE read_only[] = {{CKA_CMK_KEY_STATE, &state, sizeof(state)}};
    CHECK_RV(make_aes(s, "d", read_only, 1, &key), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE unknown[] = {{CKA_CMK(0x7f), &state, sizeof(state)}};
    CHECK_RV(make_aes(s, "e", unknown, 1, &key), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_ATTRIBUTE wrong_spec[] = {{CKA_CMK_KEY_SPEC, "AES_128", 7}};
    CHECK_RV(make_aes(s, "f", wrong_spec, 1, &key), CKR_TEMPLATE_INCONSISTENT);
    /* A mechanism that makes no key spec (and that SoftHSMv2 lacks too). */
    CK_MECHANISM blowfish = {CKM_BLOWFISH_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE blowfish_t[] = {{CKA_TOKEN, &yes, 1}};
    CHECK_RV(p11->C_GenerateKey(s, &blowfish, blowfish_t, 1, &key), CKR_MECHANISM_INVALID);
    CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_ATTRIBUTE dup[] = {{CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &len, sizeof(len)},
                          {CKA_LABEL, "x", 1}, {CKA_LABEL, "y", 1}};
    CHECK_RV(p11->C_GenerateKey(s, &aes, dup, 4, &key), CKR_TEMPLATE_INCONSISTENT);
    CK_ATTRIBUTE no_len[] = {{CKA_TOKEN, &yes, 1}};
    CHECK_RV(p11->C_GenerateKey(s, &aes, no_len, 1, &key), CKR_TEMPLATE_INCOMPLETE);
    CK_ULONG odd = 20;
    CK_ATTRIBUTE odd_len[] = {{CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &odd, sizeof(odd)}};
    CHECK_RV(p11->C_GenerateKey(s, &aes, odd_len, 2, &key), CKR_KEY_SIZE_RANGE);
    CK_ATTRIBUTE session_vendor[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                                     {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(p11->C_GenerateKey(s, &aes, session_vendor, 2, &key), CKR_TEMPLATE_INCONSISTENT);
    CK_ATTRIBUTE bad_utf8[] = {{CKA_CMK_DESCRIPTION, "\xff\xfe", 2}};
    CHECK_RV(make_aes(s, "g", bad_utf8, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    /* Byte shapes that look like UTF-8 but are not (RFC 3629): a UTF-16 surrogate, a code
     * point above U+10FFFF, overlong forms (issue 18, item 4). */
    static const char *const ill_formed[] = {"\xed\xa0\x80", "\xf7\xbf\xbf\xbf", "\xc0\x8a",
                                             "\xe0\x80\x80", "\xf4\x90\x80\x80", "\xf0\x80\x80\x80"};
    for (size_t i = 0; i < sizeof(ill_formed) / sizeof(ill_formed[0]); i++) {
        CK_ATTRIBUTE d[] = {{CKA_CMK_DESCRIPTION, (void *)ill_formed[i], strlen(ill_formed[i])}};
        CHECK_RV(make_aes(s, "u", d, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    }
    CK_ATTRIBUTE control[] = {{CKA_CMK_DESCRIPTION, "bell\a", 5}};
    CHECK_RV(make_aes(s, "h", control, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE nul_alias[] = {{CKA_CMK_ALIAS, "a\0b", 3}};
    CHECK_RV(make_aes(s, NULL, nul_alias, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    /* A label is the client's bytes, as on the backend: a NUL in it is no fault. */
    CK_ATTRIBUTE nul_label[] = {{CKA_LABEL, "a\0b", 3}};
    CHECK_RV(make_aes(s, NULL, nul_label, 1, &key), CKR_OK);
    CHECK(find_count(s, nul_label, 1, NULL) == 1);
    /* Well-formed characters of every length are welcome. */
    CK_ATTRIBUTE fine[] = {{CKA_CMK_DESCRIPTION, "a \xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x94\x91", 13}};
    CHECK_RV(make_aes(s, "fine", fine, 1, &key), CKR_OK);
    fixture_close(s);
}

static void test_bad_changes_leave_the_key_unchanged(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "steady", NULL, 0, &key), CKR_OK);
    /* One bad attribute refuses the whole template: the good one is not applied. */
    CK_ATTRIBUTE mixed[] = {{CKA_CMK_DESCRIPTION, "fine", 4}, {CKA_CMK_ALIAS, "aws/bad", 7}};
    CHECK_RV(p11->C_SetAttributeValue(s, key, mixed, 2), CKR_ATTRIBUTE_VALUE_INVALID);
    char buf[64];
    CHECK_RV(get_text(s, key, CKA_CMK_DESCRIPTION, buf, sizeof(buf)), CKR_OK);
    CHECK(strcmp(buf, "") == 0);
    CHECK_RV(set_ulong(s, key, CKA_CMK_ROTATION_INTERVAL, 3600), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_ulong(s, key, CKA_CMK_PENDING_WINDOW_DAYS, 2000), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, 99), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_text(s, key, CKA_CMK_TAGS, "cmk:x=1"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_text(s, key, CKA_CMK_KEY_ID, "x"), CKR_ATTRIBUTE_READ_ONLY);
    CHECK_RV(set_text(s, key, CKA_CMK(0x7f), "x"), CKR_ATTRIBUTE_TYPE_INVALID);
    CHECK(find_by_label(s, "steady", CKO_SECRET_KEY, NULL) == 1);
    CK_ULONG interval = 1;
    CHECK_RV(get_ulong(s, key, CKA_CMK_ROTATION_INTERVAL, &interval), CKR_OK);
    CHECK(interval == 0);
    CK_OBJECT_HANDLE copy;
    CHECK_RV(p11->C_CopyObject(s, key, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
    CHECK(find_count(s, NULL, 0, NULL) == 1);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_null_pointers_are_refused),
        T(test_unknown_and_stale_handles_are_refused),
        T(test_operations_in_the_wrong_state_are_refused),
        T(test_malformed_templates_are_refused),
        T(test_bad_changes_leave_the_key_unchanged),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
