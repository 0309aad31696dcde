/* test_createkey.c - CreateKey through C_GenerateKey(Pair) over a real SoftHSMv2 token. */
#include <dlfcn.h>

#include "fixture.h"
#include "inspect.h"

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static void test_create_aes_key_with_alias_is_found_and_encrypts(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key = 0, found = 0;
    CHECK_RV(make_aes(s, "payments", NULL, 0, &key), CKR_OK);
    CHECK(find_by_label(s, "payments", CKO_SECRET_KEY, &found) == 1);
    CHECK(found == key);
    char spec[40], key_id[40];
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "AES_256") == 0);
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_OK);
    CHECK(strlen(key_id) == 36 && key_id[14] == '4');
    CK_ULONG state = 0, usage = 0, origin = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_ENABLED);
    CHECK_RV(get_ulong(s, key, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    /* A plain template: AES-CMAC too when the backend's default CKA_SIGN allows it. */
    CHECK(CMK_USAGE_PRIMARY(usage) == CMK_USAGE_ENCRYPT_DECRYPT);
    CHECK_RV(get_ulong(s, key, CKA_CMK_ORIGIN, &origin), CKR_OK);
    CHECK(origin == CMK_ORIGIN_KMS);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
}

static void test_default_cka_id_is_the_key_id_bytes(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key = 0;
    CHECK_RV(make_aes(s, "default-id", NULL, 0, &key), CKR_OK);
    unsigned char id[64];
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &a, 1), CKR_OK);
    CHECK(a.ulValueLen == 16);
    char key_id[40], hex[40] = "";
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_OK);
    for (int i = 0, n = 0; i < 16; i++)
        n += snprintf(hex + n, sizeof(hex) - (size_t)n, "%02x", id[i]);
    char plain[40] = "";
    for (int i = 0, n = 0; key_id[i]; i++)
        if (key_id[i] != '-') plain[n++] = key_id[i];
    CHECK(strcmp(hex, plain) == 0);
    fixture_close(s);
}

static void test_ec_pair_shares_client_id_and_signs(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    unsigned char id[] = {0xab, 0xcd};
    CK_ATTRIBUTE extra[] = {{CKA_ID, id, sizeof(id)}};
    CHECK_RV(make_ec(s, "signer", extra, 1, &pub, &priv), CKR_OK);
    CK_ATTRIBUTE by_id[] = {{CKA_ID, id, sizeof(id)}};
    CHECK(find_count(s, by_id, 1, NULL) == 2);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    char spec[40];
    CHECK_RV(get_text(s, pub, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "EC_P256") == 0);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);
    fixture_close(s);
}

static void test_material_is_never_listed_as_a_second_object(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    CHECK_RV(make_aes(s, "only-once", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_ec(s, "pair-once", NULL, 0, &pub, &priv), CKR_OK);
    CHECK(find_count(s, NULL, 0, NULL) == 3);
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret, sizeof(secret)}};
    CHECK(find_count(s, t, 1, NULL) == 1);
    fixture_close(s);
}

/* An explicit alias (CKA_CMK_ALIAS) keeps the clouds' rules. */
static void test_alias_rules_are_enforced(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    const char *bad[] = {"aws/x", "ACS/x", "kms-abc", "cmk/x",  "team/default",
                         "a//b",  "a/",    "/lead",   "sp ace", "alias/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CK_RV rv = make_aes_alias(s, NULL, bad[i], &key);
        if (rv != CKR_ATTRIBUTE_VALUE_INVALID)
            fprintf(stderr, "  alias '%s' -> 0x%lx\n", bad[i], rv);
        CHECK(rv == CKR_ATTRIBUTE_VALUE_INVALID);
    }
    char long_alias[300];
    memset(long_alias, 'a', 256);
    long_alias[256] = '\0';
    CHECK_RV(make_aes_alias(s, NULL, long_alias, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(find_count(s, NULL, 0, NULL) == 0); /* nothing of the refused ones remains */
    CHECK_RV(make_aes_alias(s, "my key", "alias/team:app_1-x/y", &key), CKR_OK);
    char text[64];
    CHECK_RV(get_text(s, key, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "team:app_1-x/y") == 0);
    CHECK_RV(get_text(s, key, CKA_LABEL, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "my key") == 0); /* the label stays the client's */
    /* The same strings as labels are free text, as on any token: each key is made, and
     * none of them takes an alias from its label. */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_RV(make_aes(s, bad[i], NULL, 0, &key), CKR_OK);
        CHECK_RV(get_text(s, key, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
        CHECK(text[0] == '\0');
    }
    CHECK_RV(make_aes(s, long_alias, NULL, 0, &key), CKR_OK);
    CHECK(find_count(s, NULL, 0, NULL) == 2 + sizeof(bad) / sizeof(bad[0]));
    fixture_close(s);
}

static void test_duplicate_alias_ignoring_case_is_refused(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE a, b, pub, priv;
    CHECK_RV(make_aes_alias(s, NULL, "Orders", &a), CKR_OK);
    CHECK_RV(make_aes_alias(s, NULL, "orders", &b), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE taken = {CKA_CMK_ALIAS, "ORDERS", 6};
    CHECK_RV(make_ec(s, NULL, &taken, 1, &pub, &priv), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(find_count(s, NULL, 0, NULL) == 1);
    /* A label that is another key's alias is only a label: the key is made, alias-less. */
    CHECK_RV(make_aes(s, "orders", NULL, 0, &b), CKR_OK);
    char text[64];
    CHECK_RV(get_text(s, b, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(text[0] == '\0');
    CK_ATTRIBUTE by_alias[] = {{CKA_CMK_ALIAS, "Orders", 6}};
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_count(s, by_alias, 1, &found) == 1 && found == a);
    fixture_close(s);
}

/* Labels are free text and shared, as on any token: a find by label finds every object
 * that has it, a find by alias the one key that has the alias. */
static void test_labels_are_free_text_and_shared(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    const char *labels[] = {"My Public Key", "www.example.com", "Schl\xc3\xbcssel \xe2\x9c\x93",
                            "Test RSA 2048"};
    CK_OBJECT_HANDLE key, pub, priv;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        CHECK_RV(make_aes(s, labels[i], NULL, 0, &key), CKR_OK);
        CHECK_RV(make_ec(s, labels[i], NULL, 0, &pub, &priv), CKR_OK);
        CHECK(find_by_label(s, labels[i], CKO_SECRET_KEY, NULL) == 1);
        CK_ATTRIBUTE by_label[] = {{CKA_LABEL, (void *)labels[i], strlen(labels[i])}};
        CHECK(find_count(s, by_label, 1, NULL) == 3);
    }
    /* The first key labelled with a free alias takes it as its alias; the second one
     * with that label does not, and both are found by the label. */
    CHECK_RV(make_aes(s, "web", NULL, 0, &key), CKR_OK);
    CK_OBJECT_HANDLE second;
    CHECK_RV(make_aes(s, "web", NULL, 0, &second), CKR_OK);
    CHECK(find_by_label(s, "web", CKO_SECRET_KEY, NULL) == 2);
    CK_ATTRIBUTE by_alias[] = {{CKA_CMK_ALIAS, "alias/web", 9}};
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_count(s, by_alias, 1, &found) == 1 && found == key);
    /* A label is never read as an alias in a find. */
    CK_ATTRIBUTE prefixed[] = {{CKA_LABEL, "alias/web", 9}};
    CHECK(find_count(s, prefixed, 1, NULL) == 0);
    fixture_close(s);
}

/* Several aliases per key (AWS, Alibaba): added, listed, found, moved and removed. */
static void test_a_key_has_several_aliases_that_move_and_go(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE a, b, pub, priv;
    CHECK_RV(make_aes_alias(s, "a", "first", &a), CKR_OK);
    CHECK_RV(make_aes_alias(s, "b", "other", &b), CKR_OK);
    CHECK_RV(set_text(s, a, CKA_CMK_ADD_ALIAS, "alias/second"), CKR_OK);
    char text[128];
    CHECK_RV(get_text(s, a, CKA_CMK_ALIASES, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "first\nsecond") == 0);
    CHECK_RV(get_text(s, a, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "first") == 0);
    CK_ATTRIBUTE by_second[] = {{CKA_CMK_ALIAS, "second", 6}};
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_count(s, by_second, 1, &found) == 1 && found == a);
    /* Taken (ignoring case) by another key: refused, nothing changes. */
    CHECK_RV(set_text(s, a, CKA_CMK_ADD_ALIAS, "OTHER"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_text(s, a, CKA_CMK_ADD_ALIAS, "aws/nope"), CKR_ATTRIBUTE_VALUE_INVALID);
    /* UpdateAlias: "second" moves to b. */
    CHECK_RV(set_text(s, b, CKA_CMK_MOVE_ALIAS, "second"), CKR_OK);
    CHECK(find_count(s, by_second, 1, &found) == 1 && found == b);
    CHECK_RV(get_text(s, a, CKA_CMK_ALIASES, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "first") == 0);
    CHECK_RV(set_text(s, b, CKA_CMK_MOVE_ALIAS, "nobody-has-it"), CKR_ATTRIBUTE_VALUE_INVALID);
    /* Only between keys of one kind and usage: an EC signing key cannot take it. */
    CHECK_RV(make_ec(s, "ec", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(set_text(s, priv, CKA_CMK_MOVE_ALIAS, "second"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK(find_count(s, by_second, 1, &found) == 1 && found == b);
    /* DeleteAlias, and CKA_CMK_ALIAS replacing them all. */
    CHECK_RV(set_text(s, b, CKA_CMK_REMOVE_ALIAS, "second"), CKR_OK);
    CHECK(find_count(s, by_second, 1, NULL) == 0);
    CHECK_RV(set_text(s, b, CKA_CMK_REMOVE_ALIAS, "second"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_text(s, a, CKA_CMK_ADD_ALIAS, "third"), CKR_OK);
    CHECK_RV(set_text(s, a, CKA_CMK_ALIAS, "only"), CKR_OK);
    CHECK_RV(get_text(s, a, CKA_CMK_ALIASES, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "only") == 0);
    CHECK_RV(set_text(s, a, CKA_CMK_ALIAS, ""), CKR_OK);
    CHECK_RV(get_text(s, a, CKA_CMK_ALIASES, text, sizeof(text)), CKR_OK);
    CHECK(text[0] == '\0');
    /* None of this touched the labels. */
    CHECK_RV(get_text(s, a, CKA_LABEL, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "a") == 0);
    fixture_close(s);
}

static void test_description_and_tags_round_trip_and_validate(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    const char *desc = "key for the billing service";
    const char *tags = "team=billing\nenv=prod";
    CK_ATTRIBUTE extra[] = {{CKA_CMK_DESCRIPTION, (void *)desc, strlen(desc)},
                            {CKA_CMK_TAGS, (void *)tags, strlen(tags)}};
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "billing", extra, 2, &key), CKR_OK);
    char buf[256];
    CHECK_RV(get_text(s, key, CKA_CMK_DESCRIPTION, buf, sizeof(buf)), CKR_OK);
    CHECK(strcmp(buf, desc) == 0);
    CHECK_RV(get_text(s, key, CKA_CMK_TAGS, buf, sizeof(buf)), CKR_OK);
    CHECK(strcmp(buf, "env=prod\nteam=billing") == 0);
    CK_ATTRIBUTE by_tag[] = {{CKA_CMK_TAG, "team=billing", 12}};
    CHECK(find_count(s, by_tag, 1, NULL) == 1);
    CK_ATTRIBUTE by_other_tag[] = {{CKA_CMK_TAG, "team=sales", 10}};
    CHECK(find_count(s, by_other_tag, 1, NULL) == 0);

    char *long_desc = malloc(8194);
    memset(long_desc, 'd', 8193);
    long_desc[8193] = '\0';
    CK_ATTRIBUTE too_long[] = {{CKA_CMK_DESCRIPTION, long_desc, 8193}};
    CHECK_RV(make_aes(s, "too-long", too_long, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    free(long_desc);
    const char *dup = "a=1\na=2";
    CK_ATTRIBUTE dup_tags[] = {{CKA_CMK_TAGS, (void *)dup, strlen(dup)}};
    CHECK_RV(make_aes(s, "dup-tags", dup_tags, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    const char *reserved = "aws:owner=me";
    CK_ATTRIBUTE res_tags[] = {{CKA_CMK_TAGS, (void *)reserved, strlen(reserved)}};
    CHECK_RV(make_aes(s, "res-tags", res_tags, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    /* Control characters: C0 (a TAB, LF and CR aside), DEL, and C1 as UTF-8 writes it. */
    static const char *const bad_desc[] = {"bell\x07", "del\x7f", "c1 \xc2\x85 nel", "c1 \xc2\x9f"};
    for (size_t i = 0; i < sizeof(bad_desc) / sizeof(bad_desc[0]); i++) {
        CK_ATTRIBUTE d[] = {{CKA_CMK_DESCRIPTION, (void *)bad_desc[i], strlen(bad_desc[i])}};
        CHECK_RV(make_aes(s, "ctl", d, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    }
    const char *c1_tag = "k=\xc2\x80";
    CK_ATTRIBUTE c1_tags[] = {{CKA_CMK_TAGS, (void *)c1_tag, strlen(c1_tag)}};
    CHECK_RV(make_aes(s, "ctl-tag", c1_tags, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    const char *fine = "tab\tline\nÄ \xc2\xa0 nbsp";
    CK_ATTRIBUTE ok_desc[] = {{CKA_CMK_DESCRIPTION, (void *)fine, strlen(fine)}};
    CHECK_RV(make_aes(s, "fine-desc", ok_desc, 1, &key), CKR_OK);
    CHECK(find_count(s, NULL, 0, NULL) == 2);
    fixture_close(s);
}

/* A request in the KMS vocabulary (here a description) gets the clouds' one-usage rules;
 * plain templates are test_usage_compat's. */
static void test_usage_rules_follow_the_spec(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    CK_ATTRIBUTE aes_sign[] = {{CKA_SIGN, &yes, sizeof(yes)}, {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(make_aes(s, "aes-sign", aes_sign, 2, &key), CKR_TEMPLATE_INCONSISTENT);
    CK_ULONG sign_usage = CMK_USAGE_SIGN_VERIFY;
    CK_ATTRIBUTE aes_usage[] = {{CKA_CMK_KEY_USAGE, &sign_usage, sizeof(sign_usage)}};
    CHECK_RV(make_aes(s, "aes-usage", aes_usage, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE ec_decrypt[] = {{CKA_DECRYPT, &yes, sizeof(yes)}, {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(make_ec(s, "ec-decrypt", ec_decrypt, 2, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    CK_ULONG enc_usage = CMK_USAGE_ENCRYPT_DECRYPT;
    CK_ATTRIBUTE contradiction[] = {{CKA_CMK_KEY_USAGE, &enc_usage, sizeof(enc_usage)},
                                    {CKA_SIGN, &yes, sizeof(yes)}};
    CHECK_RV(make_aes(s, "contradiction", contradiction, 2, &key), CKR_TEMPLATE_INCONSISTENT);
    /* In the KMS vocabulary an extractable key is refused (a plain template gets an
     * ordinary backend object: test_extractable_token_keys_are_ordinary_backend_objects). */
    CK_ATTRIBUTE extractable[] = {{CKA_EXTRACTABLE, &yes, sizeof(yes)},
                                  {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(make_aes(s, "extractable", extractable, 2, &key), CKR_TEMPLATE_INCONSISTENT);
    CHECK(find_count(s, NULL, 0, NULL) == 0);

    /* A plain template asking for a non-sensitive key still gets a sensitive one. */
    CK_ATTRIBUTE lax[] = {{CKA_SENSITIVE, &no, sizeof(no)}, {CKA_SIGN, &no, sizeof(no)}};
    CHECK_RV(make_aes(s, "lax", lax, 2, &key), CKR_OK);
    CK_BBOOL sensitive = CK_FALSE, extract = CK_TRUE;
    CK_ATTRIBUTE q[] = {{CKA_SENSITIVE, &sensitive, 1}, {CKA_EXTRACTABLE, &extract, 1}};
    CHECK_RV(p11->C_GetAttributeValue(s, key, q, 2), CKR_OK);
    CHECK(sensitive == CK_TRUE && extract == CK_FALSE);
    unsigned char value[32];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    /* A key asked not to sign cannot (AES-CMAC). */
    CK_MECHANISM cmac = {CKM_AES_CMAC, NULL, 0};
    CHECK_RV(p11->C_SignInit(s, &cmac, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_rotation_policy_at_create(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    CK_ATTRIBUTE on[] = {{CKA_CMK_ROTATION_ENABLED, &yes, sizeof(yes)},
                         {CKA_CMK_ROTATION_PERIOD, "90d", 3}};
    CHECK_RV(make_aes(s, "rotating", on, 2, &key), CKR_OK);
    CK_ULONG interval = 0, created = 0, next = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_ROTATION_INTERVAL, &interval), CKR_OK);
    CHECK(interval == 90 * 86400UL);
    CHECK_RV(get_ulong(s, key, CKA_CMK_CREATION_DATE, &created), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_NEXT_ROTATION_DATE, &next), CKR_OK);
    CHECK(next == created + interval);
    CK_ATTRIBUTE too_short[] = {{CKA_CMK_ROTATION_ENABLED, &yes, sizeof(yes)},
                                {CKA_CMK_ROTATION_PERIOD, "6d", 2}};
    CHECK_RV(make_aes(s, "short", too_short, 2, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE bad_unit[] = {{CKA_CMK_ROTATION_PERIOD, "30w", 3}};
    CHECK_RV(make_aes(s, "bad-unit", bad_unit, 1, &key), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE ec_rotate[] = {{CKA_CMK_ROTATION_ENABLED, &yes, sizeof(yes)}};
    CHECK_RV(make_ec(s, "ec-rotate", ec_rotate, 1, &pub, &priv), CKR_TEMPLATE_INCONSISTENT);
    CHECK(find_count(s, NULL, 0, NULL) == 1);
    fixture_close(s);
}

static void test_session_keys_pass_through_untouched(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 16;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_LABEL, "temp", 4}};
    CK_OBJECT_HANDLE key = 0;
    CHECK_RV(p11->C_GenerateKey(s, &mech, t, 2, &key), CKR_OK);
    char spec[40];
    CHECK_RV(get_text(s, key, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_ATTRIBUTE_TYPE_INVALID);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CHECK(find_by_label(s, "temp", CKO_SECRET_KEY, NULL) == 1);
    fixture_close(s);
    /* A new process (here: a new initialisation) no longer has the session key. */
    s = fixture_open();
    CHECK(find_by_label(s, "temp", CKO_SECRET_KEY, NULL) == 0);
    fixture_close(s);
}

static void test_set_attributes_change_alias_description_and_state(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, other, pub, priv;
    CHECK_RV(make_aes(s, "before", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_aes(s, "taken", NULL, 0, &other), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_LABEL, "after"), CKR_OK);
    CHECK(find_by_label(s, "after", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_by_label(s, "before", CKO_SECRET_KEY, NULL) == 0);
    /* A label is free text; the alias (taken from the first label) did not move with it. */
    CHECK_RV(set_text(s, key, CKA_LABEL, "TAKEN"), CKR_OK);
    CHECK(find_by_label(s, "TAKEN", CKO_SECRET_KEY, NULL) == 1);
    char alias[32];
    CHECK_RV(get_text(s, key, CKA_CMK_ALIAS, alias, sizeof(alias)), CKR_OK);
    CHECK(strcmp(alias, "before") == 0);
    CHECK_RV(set_text(s, key, CKA_CMK_ALIAS, "after"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_ALIAS, "TAKEN"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(set_text(s, key, CKA_CMK_ALIAS, "aws/nope"), CKR_ATTRIBUTE_VALUE_INVALID);
    CHECK_RV(get_text(s, key, CKA_CMK_ALIAS, alias, sizeof(alias)), CKR_OK);
    CHECK(strcmp(alias, "after") == 0);
    CHECK_RV(set_text(s, key, CKA_CMK_DESCRIPTION, "new words"), CKR_OK);
    CHECK_RV(set_text(s, key, CKA_CMK_KEY_SPEC, "AES_128"), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE weaken = {CKA_EXTRACTABLE, &yes, sizeof(yes)};
    CHECK_RV(p11->C_SetAttributeValue(s, key, &weaken, 1), CKR_ATTRIBUTE_READ_ONLY);

    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_ENABLED), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_IMPORT), CKR_ACTION_PROHIBITED);

    CHECK_RV(make_ec(s, "ec-state", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(set_ulong(s, priv, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_destroy_schedules_deletion_and_hides_the_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv;
    CHECK_RV(make_aes(s, "doomed", NULL, 0, &key), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, key), CKR_OK);
    CHECK(find_by_label(s, "doomed", CKO_SECRET_KEY, NULL) == 0);
    CK_ULONG pending = CMK_STATE_PENDING_DELETION;
    CK_ATTRIBUTE by_state[] = {{CKA_CMK_KEY_STATE, &pending, sizeof(pending)}};
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_count(s, by_state, 1, &found) == 1);
    CHECK(found == key);
    CK_ULONG when = 0, created = 0;
    CHECK_RV(get_ulong(s, key, CKA_CMK_DELETION_DATE, &when), CKR_OK);
    CHECK_RV(get_ulong(s, key, CKA_CMK_CREATION_DATE, &created), CKR_OK);
    CHECK(when >= created + 30 * 86400UL && when <= created + 30 * 86400UL + 60);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* Cancelling returns it Disabled. */
    CHECK_RV(set_ulong(s, key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK(find_by_label(s, "doomed", CKO_SECRET_KEY, NULL) == 1);

    /* Destroying only the public half keeps the private key usable. */
    CHECK_RV(make_ec(s, "half", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, pub), CKR_OK);
    CHECK(find_by_label(s, "half", CKO_PUBLIC_KEY, NULL) == 0);
    CHECK(find_by_label(s, "half", CKO_PRIVATE_KEY, NULL) == 1);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char digest[32] = {0}, sig[128];
    CK_ULONG sig_len = sizeof(sig);
    CHECK_RV(p11->C_SignInit(s, &mech, priv), CKR_OK);
    CHECK_RV(p11->C_Sign(s, digest, 32, sig, &sig_len), CKR_OK);
    fixture_close(s);
}

/* As on the backend: each half of a pair is destroyed by its own C_DestroyObject, in
 * either order, each answering CKR_OK; a destroyed object's handle is invalid for plain
 * PKCS#11 at once; its name is free for a new key. The material still waits out the
 * pending window, and the KMS view (CKA_CMK_*) still reaches the key to cancel. */
static void test_both_halves_are_destroyed_in_either_order_and_their_handles_go(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, pub2, priv2, again_pub, again_priv;
    CHECK_RV(make_ec(s, "pair-one", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(make_ec(s, "pair-two", NULL, 0, &pub2, &priv2), CKR_OK);
    char text[64];
    /* Private half first: the public one stays, found and readable, until destroyed. */
    CHECK_RV(p11->C_DestroyObject(s, priv), CKR_OK);
    CHECK_RV(get_text(s, priv, CKA_LABEL, text, sizeof(text)), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(p11->C_DestroyObject(s, priv), CKR_OBJECT_HANDLE_INVALID);
    CHECK(find_by_label(s, "pair-one", CKO_PRIVATE_KEY, NULL) == 0);
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_by_label(s, "pair-one", CKO_PUBLIC_KEY, &found) == 1 && found == pub);
    CHECK_RV(get_text(s, pub, CKA_LABEL, text, sizeof(text)), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, pub), CKR_OK);
    CHECK(find_by_label(s, "pair-one", CKO_PUBLIC_KEY, NULL) == 0);
    CHECK_RV(get_text(s, pub, CKA_LABEL, text, sizeof(text)), CKR_OBJECT_HANDLE_INVALID);
    /* Public half first. */
    CHECK_RV(p11->C_DestroyObject(s, pub2), CKR_OK);
    CHECK_RV(p11->C_DestroyObject(s, priv2), CKR_OK);
    CK_ATTRIBUTE by_label[] = {{CKA_LABEL, "pair-two", 8}};
    CHECK(find_count(s, by_label, 1, NULL) == 0);
    /* Both keys wait out their pending window, seen by the KMS view. */
    CK_ULONG pending = CMK_STATE_PENDING_DELETION;
    CK_ATTRIBUTE by_state[] = {{CKA_CMK_KEY_STATE, &pending, sizeof(pending)}};
    CHECK(find_count(s, by_state, 1, NULL) == 2);
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_PENDING_DELETION);
    /* The label is free at once; the alias (from the first label) stays reserved until the
     * purge, as the clouds keep it: the new key has none. */
    CHECK_RV(make_ec(s, "pair-one", NULL, 0, &again_pub, &again_priv), CKR_OK);
    CHECK(find_by_label(s, "pair-one", CKO_PRIVATE_KEY, &found) == 1 && found == again_priv);
    CHECK_RV(get_text(s, again_priv, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(text[0] == '\0');
    CHECK_RV(sign_verify_ec(s, again_priv, again_pub), CKR_OK);
    /* Cancelling brings the private key back (Disabled); its public object, destroyed by
     * its own call, stays gone. */
    CHECK_RV(set_ulong(s, priv, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK(find_by_label(s, "pair-one", CKO_PRIVATE_KEY, NULL) == 2);
    CHECK(find_by_label(s, "pair-one", CKO_PUBLIC_KEY, NULL) == 1);
    fixture_close(s);
}

/* A public session changes a public object as on any token (its label), never the key
 * behind it: state, aliases and every other CKA_CMK_* attribute need the user. Before, a
 * session that never logged in disabled or scheduled the deletion of a pair through its
 * public object (issue 18, item 1). */
static void test_a_public_session_changes_the_public_object_but_not_the_key(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_ec(s, "guarded", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(set_ulong(s, pub, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(set_ulong(s, pub, CKA_CMK_KEY_STATE, CMK_STATE_PENDING_DELETION),
             CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(set_ulong(s, pub, CKA_CMK_PENDING_WINDOW_DAYS, 7), CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(set_text(s, pub, CKA_CMK_ALIAS, "hijacked"), CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(set_text(s, pub, CKA_CMK_ADD_ALIAS, "extra"), CKR_USER_NOT_LOGGED_IN);
    CHECK_RV(set_text(s, pub, CKA_LABEL, "public name"), CKR_OK);
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CK_ULONG state = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(state == CMK_STATE_ENABLED);
    char text[64];
    CHECK_RV(get_text(s, priv, CKA_CMK_ALIASES, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "guarded") == 0);
    CHECK_RV(get_text(s, priv, CKA_LABEL, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "guarded") == 0);
    CHECK_RV(get_text(s, pub, CKA_LABEL, text, sizeof(text)), CKR_OK);
    CHECK(strcmp(text, "public name") == 0);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    fixture_close(s);
}

static void test_initialize_follows_the_spec(void)
{
    CK_SESSION_HANDLE s;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s),
             CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK_RV(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CK_C_INITIALIZE_ARGS reserved = {.flags = CKF_OS_LOCKING_OK, .pReserved = &s};
    CHECK_RV(p11->C_Initialize(&reserved), CKR_ARGUMENTS_BAD);
    CHECK_RV(p11->C_Initialize(NULL), CKR_OK);
    CHECK_RV(p11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    CK_INFO info;
    CHECK_RV(p11->C_GetInfo(&info), CKR_OK);
    CHECK(info.cryptokiVersion.major == 2 && info.cryptokiVersion.minor == 40);
    CK_ULONG n = 0;
    CHECK_RV(p11->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    CHECK(n == 2); /* the CMK token and the backend's free slot, as SoftHSMv2 lists them */
    CK_TOKEN_INFO ti;
    CHECK_RV(p11->C_GetTokenInfo(0, &ti), CKR_OK);
    CHECK(memcmp(ti.label, "cmkp11 ", 7) == 0);
    CHECK_RV(p11->C_GetTokenInfo(7, &ti), CKR_SLOT_ID_INVALID);
    CHECK_RV(p11->C_Finalize(NULL), CKR_OK);
}

static void test_read_only_session_cannot_create(void)
{
    CK_SESSION_HANDLE rw = fixture_open(), ro;
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(ro, "ro-key", NULL, 0, &key), CKR_SESSION_READ_ONLY);
    CHECK(find_count(rw, NULL, 0, NULL) == 0);
    fixture_close(rw);
}

static void test_buffer_too_small_and_length_query(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key;
    CHECK_RV(make_aes(s, "lengths", NULL, 0, &key), CKR_OK);
    CK_ATTRIBUTE q = {CKA_LABEL, NULL, 0};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &q, 1), CKR_OK);
    CHECK(q.ulValueLen == 7);
    char small[3];
    CK_ATTRIBUTE t[] = {{CKA_LABEL, small, sizeof(small)}, {0x7ffffff0UL, small, 1}};
    CK_RV rv = p11->C_GetAttributeValue(s, key, t, 2);
    CHECK(rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_BUFFER_TOO_SMALL);
    CHECK(t[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CHECK(t[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    fixture_close(s);
}

static bool contains(const unsigned char *hay, size_t n, const unsigned char *needle, size_t k)
{
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

static void test_private_key_keeps_public_key_info_after_public_object_is_gone(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(make_ec(s, "pki", NULL, 0, &pub, &priv), CKR_OK);
    unsigned char point[128], spki[256], point2[128], spki2[256];
    CK_ATTRIBUTE from_pub[] = {{CKA_EC_POINT, point, sizeof(point)},
                               {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)}};
    CHECK_RV(p11->C_GetAttributeValue(s, pub, from_pub, 2), CKR_OK);
    CHECK(from_pub[1].ulValueLen == 91 && spki[0] == 0x30); /* P-256 SPKI is 91 bytes */
    /* The SPKI carries the raw point (the EC_POINT without its OCTET STRING header). */
    CHECK(contains(spki, from_pub[1].ulValueLen, point + 2, from_pub[0].ulValueLen - 2));
    CHECK_RV(p11->C_DestroyObject(s, pub), CKR_OK);
    CK_ATTRIBUTE from_priv[] = {{CKA_EC_POINT, point2, sizeof(point2)},
                                {CKA_PUBLIC_KEY_INFO, spki2, sizeof(spki2)}};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, from_priv, 2), CKR_OK);
    CHECK(from_priv[0].ulValueLen == from_pub[0].ulValueLen &&
          memcmp(point, point2, from_pub[0].ulValueLen) == 0);
    CHECK(from_priv[1].ulValueLen == from_pub[1].ulValueLen &&
          memcmp(spki, spki2, from_pub[1].ulValueLen) == 0);
    fixture_close(s);
}

/* usage_conflict = sign: the one-usage rule for plain templates, as before honour. */
static void test_rsa_pair_asking_both_usages_becomes_sign_verify(void)
{
    fixture_append_policy("usage_conflict = sign");
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1},
                         {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_ENCRYPT, &yes, 1},
                         {CKA_VERIFY, &yes, 1},
                         {CKA_LABEL, "rsa", 3}};
    CK_ATTRIBUTE vt[] = {
        {CKA_TOKEN, &yes, 1}, {CKA_DECRYPT, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_LABEL, "rsa", 3}};
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(p11->C_GenerateKeyPair(s, &mech, pt, 5, vt, 4, &pub, &priv), CKR_OK);
    CK_ULONG usage = 0;
    CHECK_RV(get_ulong(s, priv, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(usage == CMK_USAGE_SIGN_VERIFY);
    CK_BBOOL decrypt = CK_TRUE, sign = CK_FALSE;
    CK_ATTRIBUTE flags[] = {{CKA_DECRYPT, &decrypt, 1}, {CKA_SIGN, &sign, 1}};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, flags, 2), CKR_OK);
    CHECK(decrypt == CK_FALSE && sign == CK_TRUE);
    char spec[40];
    CHECK_RV(get_text(s, priv, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "RSA_2048") == 0);
    unsigned char modulus[512], spki[600];
    CK_ATTRIBUTE q[] = {{CKA_MODULUS, modulus, sizeof(modulus)},
                        {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)}};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, q, 2), CKR_OK);
    CHECK(q[0].ulValueLen == 256 && contains(spki, q[1].ulValueLen, modulus, 256));
    CK_MECHANISM oaep = {CKM_RSA_PKCS, NULL, 0};
    CHECK_RV(p11->C_EncryptInit(s, &oaep, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_find_by_metadata_attributes(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE a, b, pub, priv;
    CK_ATTRIBUTE desc[] = {{CKA_CMK_DESCRIPTION, "alpha", 5}};
    CK_ATTRIBUTE rotating[] = {{CKA_CMK_ROTATION_ENABLED, &yes, 1}};
    CHECK_RV(make_aes(s, "alpha", desc, 1, &a), CKR_OK);
    CHECK_RV(make_aes(s, "beta", rotating, 1, &b), CKR_OK);
    CHECK_RV(make_ec(s, "gamma", NULL, 0, &pub, &priv), CKR_OK);
    CK_OBJECT_HANDLE found;
    CHECK(find_count(s, desc, 1, &found) == 1 && found == a);
    CHECK(find_count(s, rotating, 1, &found) == 1 && found == b);
    CK_ATTRIBUTE spec[] = {{CKA_CMK_KEY_SPEC, "EC_P256", 7}};
    CHECK(find_count(s, spec, 1, NULL) == 2); /* private and public object */
    CK_ULONG sign = CMK_USAGE_SIGN_VERIFY;
    CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE usage[] = {{CKA_CMK_KEY_USAGE, &sign, sizeof(sign)},
                            {CKA_CLASS, &priv_class, sizeof(priv_class)}};
    CHECK(find_count(s, usage, 2, &found) == 1 && found == priv);
    char key_id[40];
    CHECK_RV(get_text(s, b, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_OK);
    CK_ATTRIBUTE by_id[] = {{CKA_CMK_KEY_ID, key_id, 36}};
    CHECK(find_count(s, by_id, 1, &found) == 1 && found == b);
    CK_ULONG enabled = CMK_STATE_ENABLED;
    CK_ATTRIBUTE by_state[] = {{CKA_CMK_KEY_STATE, &enabled, sizeof(enabled)}};
    CHECK(find_count(s, by_state, 1, NULL) == 4);
    /* Standard attributes the store does not hold are compared on the material. */
    CK_ATTRIBUTE can_sign[] = {{CKA_SIGN, &yes, 1}};
    CHECK(find_count(s, can_sign, 1, &found) == 1 && found == priv);
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE by_type[] = {{CKA_KEY_TYPE, &aes, sizeof(aes)}};
    CHECK(find_count(s, by_type, 1, NULL) == 2);
    /* Before login, private and secret objects are invisible; public ones are not. */
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK(find_count(s, NULL, 0, &found) == 1 && found == pub);
    char alias[32];
    CHECK_RV(get_text(s, a, CKA_LABEL, alias, sizeof(alias)), CKR_OBJECT_HANDLE_INVALID);
    CHECK_RV(get_text(s, pub, CKA_LABEL, alias, sizeof(alias)), CKR_OK);
    fixture_close(s);
}

static void test_key_specs_follow_mechanism_and_template(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    static const struct {
        const unsigned char *oid;
        size_t len;
        const char *spec;
    } curves[] = {
        {(const unsigned char *)"\x06\x05\x2b\x81\x04\x00\x22", 7, "EC_P384"},
        {(const unsigned char *)"\x06\x05\x2b\x81\x04\x00\x23", 7, "EC_P521"},
        {(const unsigned char *)"\x06\x05\x2b\x81\x04\x00\x0a", 7, "EC_P256K"},
        {(const unsigned char *)"\x06\x09\x2b\x24\x03\x03\x02\x08\x01\x01\x07", 11,
         "EC_brainpoolP256r1"},
    };
    CK_MECHANISM ec = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1},
                             {CKA_EC_PARAMS, (void *)curves[i].oid, curves[i].len}};
        CK_ATTRIBUTE vt[] = {{CKA_TOKEN, &yes, 1}};
        CK_OBJECT_HANDLE pub, priv;
        CHECK_RV(p11->C_GenerateKeyPair(s, &ec, pt, 2, vt, 1, &pub, &priv), CKR_OK);
        char spec[40];
        CHECK_RV(get_text(s, priv, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
        if (strcmp(spec, curves[i].spec))
            fprintf(stderr, "  got %s want %s\n", spec, curves[i].spec);
        CHECK(strcmp(spec, curves[i].spec) == 0);
    }
    CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
    for (CK_ULONG len = 16; len <= 32; len += 8) {
        CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &len, sizeof(len)}};
        CK_OBJECT_HANDLE key;
        CHECK_RV(p11->C_GenerateKey(s, &aes, t, 2, &key), CKR_OK);
        char spec[40], want[40];
        snprintf(want, sizeof(want), "AES_%lu", len * 8);
        CHECK_RV(get_text(s, key, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
        CHECK(strcmp(spec, want) == 0);
    }
    fixture_close(s);
}

static void test_interface_list_offers_pkcs11(void)
{
    void *dl = dlopen(getenv("CMK_MODULE"), RTLD_NOW | RTLD_LOCAL);
    CK_RV(*get_list)
    (CK_INTERFACE_PTR, CK_ULONG_PTR) =
        (CK_RV(*)(CK_INTERFACE_PTR, CK_ULONG_PTR))dlsym(dl, "C_GetInterfaceList");
    CK_RV(*get_one)
    (CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
        (CK_RV(*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(
            dl, "C_GetInterface");
    CHECK(get_list && get_one);
    if (!get_list || !get_one) return;
    CK_ULONG n = 0;
    CHECK_RV(get_list(NULL, &n), CKR_OK);
    CHECK(n == 1);
    CK_INTERFACE list[1];
    CHECK_RV(get_list(list, &n), CKR_OK);
    CHECK(strcmp((char *)list[0].pInterfaceName, "PKCS 11") == 0);
    CHECK(list[0].pFunctionList == (void *)p11);
    CK_INTERFACE_PTR iface = NULL;
    CHECK_RV(get_one((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &iface, 0), CKR_OK);
    CHECK(iface && iface->pFunctionList == (void *)p11);
    CHECK_RV(get_one((CK_UTF8CHAR_PTR) "Vendor X", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
}

static void test_keys_stay_usable_after_logout_and_last_session_close(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv, key;
    CHECK_RV(make_ec(s, "durable", NULL, 0, &pub, &priv), CKR_OK);
    CHECK_RV(make_aes(s, "durable-aes", NULL, 0, &key), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    const char *pin = getenv("CMK_PIN");
    /* The backend renumbers private objects at logout... */
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    /* ...and every object when the last session closes. */
    CHECK_RV(p11->C_CloseSession(s), CKR_OK);
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    char label[32];
    CHECK_RV(get_text(s, key, CKA_LABEL, label, sizeof(label)), CKR_OK);
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE t = {CKA_KEY_TYPE, &type, sizeof(type)};
    CHECK_RV(p11->C_GetAttributeValue(s, key, &t, 1), CKR_OK);
    CHECK(type == CKK_AES);
    CHECK_RV(p11->C_CloseAllSessions(0), CKR_OK);
    CHECK_RV(p11->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    fixture_close(s);
}

/* usage_conflict = sign: an EC key asked for derive and sign (make_ec asks sign) is made
 * SIGN_VERIFY and cannot derive, as before honour. */
static void test_cmk_keys_do_not_derive(void)
{
    fixture_append_policy("usage_conflict = sign");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub, priv;
    CK_ATTRIBUTE derive[] = {{CKA_DERIVE, &yes, 1}};
    CHECK_RV(make_ec(s, "no-ecdh", derive, 1, &pub, &priv), CKR_OK);
    CK_BBOOL d = CK_TRUE;
    CK_ATTRIBUTE q = {CKA_DERIVE, &d, 1};
    CHECK_RV(p11->C_GetAttributeValue(s, priv, &q, 1), CKR_OK);
    CHECK(d == CK_FALSE);
    unsigned char peer[65] = {4};
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, sizeof(peer), peer};
    CK_MECHANISM ecdh = {CKM_ECDH1_DERIVE, &params, sizeof(params)};
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret, sizeof(secret)},
                        {CKA_KEY_TYPE, &generic, sizeof(generic)}};
    CK_OBJECT_HANDLE out;
    CHECK_RV(p11->C_DeriveKey(s, &ecdh, priv, t, 2, &out), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
}

static void test_key_imported_in_clear_becomes_a_cmk(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    unsigned char value[16] = {1, 2, 3};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_VALUE, value, sizeof(value)},
                        {CKA_LABEL, "imported", 8}};
    CK_OBJECT_HANDLE h;
    CHECK_RV(p11->C_CreateObject(s, t, 5, &h), CKR_OK);
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_by_label(s, "imported", CKO_SECRET_KEY, &found) == 1 && found == h);
    char spec[40];
    CHECK_RV(get_text(s, h, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "AES_128") == 0);
    CK_ULONG origin = 0, state = 0;
    CHECK_RV(get_ulong(s, h, CKA_CMK_ORIGIN, &origin), CKR_OK);
    CHECK_RV(get_ulong(s, h, CKA_CMK_KEY_STATE, &state), CKR_OK);
    CHECK(origin == CMK_ORIGIN_EXTERNAL && state == CMK_STATE_ENABLED);
    unsigned char v[16];
    CK_ATTRIBUTE read_value = {CKA_VALUE, v, sizeof(v)};
    CHECK_RV(p11->C_GetAttributeValue(s, h, &read_value, 1), CKR_ATTRIBUTE_SENSITIVE);
    CHECK_RV(aes_gcm_roundtrip(s, h), CKR_OK);
    /* A certificate-like data object, renamed, then destroyed: the record follows. */
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE d[] = {{CKA_CLASS, &data, sizeof(data)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_LABEL, "note", 4},
                        {CKA_VALUE, "hello", 5}};
    CK_OBJECT_HANDLE dh;
    CHECK_RV(p11->C_CreateObject(s, d, 4, &dh), CKR_OK);
    CK_ATTRIBUTE by_note[] = {{CKA_LABEL, "note", 4}};
    CK_ATTRIBUTE by_memo[] = {{CKA_LABEL, "memo", 4}};
    CHECK(find_count(s, by_note, 1, NULL) == 1);
    CHECK_RV(set_text(s, dh, CKA_LABEL, "memo"), CKR_OK);
    CHECK(find_count(s, by_note, 1, NULL) == 0);
    CHECK(find_count(s, by_memo, 1, NULL) == 1);
    fixture_close(s);
    s = fixture_open(); /* another process knows them too, from the store's record */
    CHECK(find_by_label(s, "imported", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_count(s, by_memo, 1, &dh) == 1);
    CHECK_RV(p11->C_DestroyObject(s, dh), CKR_OK);
    CHECK(find_count(s, by_memo, 1, NULL) == 0);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM passthrough") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM audit WHERE action = 'ImportKey'") == 1);
}

static void test_clear_import_can_be_refused_by_policy(void)
{
    fixture_append_policy("refuse_clear_import = true");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    unsigned char value[16] = {9};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_VALUE, value, sizeof(value)}};
    CK_OBJECT_HANDLE h;
    CHECK_RV(p11->C_CreateObject(s, t, 4, &h), CKR_TEMPLATE_INCONSISTENT);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
    CHECK(inspect_backend_material() == 0);
}

static CK_RV make_rsa_pair(CK_SESSION_HANDLE s, const char *alias, CK_ULONG bits, bool both)
{
    CK_BYTE e[] = {1, 0, 1};
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, 1},
                          {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                          {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
                          {CKA_LABEL, (void *)alias, (CK_ULONG)strlen(alias)},
                          {CKA_VERIFY, &yes, 1},
                          {CKA_ENCRYPT, &yes, 1}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1},
                           {CKA_LABEL, (void *)alias, (CK_ULONG)strlen(alias)},
                           {CKA_SIGN, &yes, 1},
                           {CKA_DECRYPT, &yes, 1}};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE h1, h2;
    return p11->C_GenerateKeyPair(s, &gen, pub, both ? 6 : 5, priv, both ? 4 : 3, &h1, &h2);
}

/* Wraps key under a fresh session AES key: CKR_OK when the backend lets it leave. */
static CK_RV wrap_out(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_OBJECT_HANDLE kek;
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_WRAP, &yes, 1}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RV rv = p11->C_GenerateKey(s, &gen, t, 2, &kek);
    if (rv != CKR_OK) return rv;
    unsigned char out[4096];
    CK_ULONG out_len = sizeof(out);
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP_PAD, NULL, 0}; /* RFC 5649: any length */
    return p11->C_WrapKey(s, &wrap, kek, key, out, &out_len);
}

/* Item 11: a plain template asking CKA_EXTRACTABLE=TRUE for a token key (its owner means
 * to wrap it to another HSM) gets what the backend alone gives, an ordinary backend
 * object: wrappable, readable when not sensitive, found by label, no CMK row. So do keys
 * imported in clear and copies of extractable session keys into the token. */
static void test_extractable_token_keys_are_ordinary_backend_objects(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes, pub, priv, imported, copy, session_key;
    CK_ATTRIBUTE lax[] = {{CKA_EXTRACTABLE, &yes, 1}, {CKA_SENSITIVE, &no, 1}};
    CHECK_RV(make_aes(s, "to be exported", lax, 2, &aes), CKR_OK);
    unsigned char value[32];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    CHECK_RV(p11->C_GetAttributeValue(s, aes, &v, 1), CKR_OK);
    CHECK(v.ulValueLen == 32);
    CHECK_RV(wrap_out(s, aes), CKR_OK);
    char key_id[40];
    CHECK_RV(get_text(s, aes, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_ATTRIBUTE rsa_priv[] = {{CKA_EXTRACTABLE, &yes, 1}};
    CK_MECHANISM rsa_gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE rpub[] = {{CKA_TOKEN, &yes, 1}, {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                           {CKA_LABEL, "rsa-out", 7}};
    CK_ATTRIBUTE rpriv[] = {{CKA_TOKEN, &yes, 1}, rsa_priv[0], {CKA_LABEL, "rsa-out", 7}};
    CHECK_RV(p11->C_GenerateKeyPair(s, &rsa_gen, rpub, 3, rpriv, 3, &pub, &priv), CKR_OK);
    CHECK_RV(wrap_out(s, priv), CKR_OK);
    /* In clear, extractable: kept as given. */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    unsigned char clear[16] = {7, 7, 7};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)},
                        {CKA_TOKEN, &yes, 1},           {CKA_VALUE, clear, sizeof(clear)},
                        {CKA_EXTRACTABLE, &yes, 1},     {CKA_LABEL, "clear-out", 9}};
    CHECK_RV(p11->C_CreateObject(s, t, 6, &imported), CKR_OK);
    CHECK_RV(wrap_out(s, imported), CKR_OK);
    /* A session key that may leave, copied into the token: the backend's copy. */
    CK_ULONG len = 16;
    CK_ATTRIBUTE st[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CHECK_RV(p11->C_GenerateKey(s, &gen, st, 2, &session_key), CKR_OK);
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "copy-out", 8}};
    CHECK_RV(p11->C_CopyObject(s, session_key, to_token, 2, &copy), CKR_OK);
    CHECK_RV(wrap_out(s, copy), CKR_OK);
    fixture_close(s);
    /* Token objects of the backend, seen again in a new session; no CMK, no audit. */
    s = fixture_open();
    CK_OBJECT_HANDLE found;
    CHECK(find_by_label(s, "to be exported", CKO_SECRET_KEY, &found) == 1);
    CHECK(find_by_label(s, "rsa-out", CKO_PRIVATE_KEY, &found) == 1);
    CHECK(find_by_label(s, "clear-out", CKO_SECRET_KEY, &found) == 1);
    CHECK(find_by_label(s, "copy-out", CKO_SECRET_KEY, &found) == 1);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM audit") == 0);
    CHECK(inspect_log_count("made as an ordinary backend object, not a CMK") == 3);
    CHECK(inspect_log_count("stays an ordinary backend object, not a CMK") == 1);
}

/* [policy] extractable_keys = refuse: such templates are refused as in the KMS vocabulary,
 * and nothing is made. */
static void test_extractable_keys_can_be_refused_by_policy(void)
{
    fixture_append_policy("extractable_keys = refuse");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE aes;
    CK_ATTRIBUTE x[] = {{CKA_EXTRACTABLE, &yes, 1}};
    CHECK_RV(make_aes(s, "to be exported", x, 1, &aes), CKR_TEMPLATE_INCONSISTENT);
    CK_ULONG len = 16;
    CK_ATTRIBUTE st[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_EXTRACTABLE, &yes, 1}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE session_key, copy;
    CHECK_RV(p11->C_GenerateKey(s, &gen, st, 2, &session_key), CKR_OK);
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}};
    CHECK_RV(p11->C_CopyObject(s, session_key, to_token, 1, &copy), CKR_ACTION_PROHIBITED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 0);
    CHECK(inspect_backend_material() == 0);
    CHECK(inspect_log_count("CKA_EXTRACTABLE=TRUE is refused") == 1);
}

/* [policy] non_sensitive_keys = plain: a key asked CKA_SENSITIVE=FALSE is what the backend
 * makes of it, an ordinary object; by default (raise) it is a CMK, sensitive. */
static void test_non_sensitive_keys_can_stay_ordinary_objects_by_policy(void)
{
    fixture_append_policy("non_sensitive_keys = plain");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE plain, kms;
    CK_ATTRIBUTE lax[] = {{CKA_SENSITIVE, &no, 1}};
    CHECK_RV(make_aes(s, "readable", lax, 1, &plain), CKR_OK);
    char key_id[40];
    CHECK_RV(get_text(s, plain, CKA_CMK_KEY_ID, key_id, sizeof(key_id)), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_BBOOL sensitive = CK_TRUE;
    CK_ATTRIBUTE q = {CKA_SENSITIVE, &sensitive, 1};
    CHECK_RV(p11->C_GetAttributeValue(s, plain, &q, 1), CKR_OK);
    CHECK(sensitive == CK_FALSE);
    /* The KMS vocabulary still makes a CMK, sensitive. */
    CK_ATTRIBUTE lax_kms[] = {{CKA_SENSITIVE, &no, 1}, {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(make_aes(s, "kms", lax_kms, 2, &kms), CKR_OK);
    CHECK_RV(p11->C_GetAttributeValue(s, kms, &q, 1), CKR_OK);
    CHECK(sensitive == CK_TRUE);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 1);
    CHECK(inspect_log_count("asks CKA_SENSITIVE=FALSE, which a CMK never is") == 1);
    fixture_append_policy("non_sensitive_keys = lower");
    char out[2048];
    CHECK_RV(fixture_init_capturing(out, sizeof(out)), CKR_GENERAL_ERROR);
    CHECK(strstr(out, "non_sensitive_keys") && strstr(out, "must be 'raise' or 'plain'"));
}

static void test_extractable_keys_value_is_checked(void)
{
    fixture_append_policy("extractable_keys = sometimes");
    char out[2048];
    CHECK_RV(fixture_init_capturing(out, sizeof(out)), CKR_GENERAL_ERROR);
    CHECK(strstr(out, "extractable_keys") && strstr(out, "must be 'plain' or 'refuse'"));
}

/* Item 11: a key asked for with CKA_PRIVATE=FALSE (pkcs11-tool's AES default) is a public
 * CMK, as on the backend: found and used before login, made in a public read/write
 * session; its CMK metadata still changes only after a login. A key asked private, or
 * asked nothing, stays out of sight before login. */
static void test_non_private_keys_are_public_as_on_the_backend(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE pub_key, priv_key, later, refused;
    CK_ATTRIBUTE open_key[] = {{CKA_PRIVATE, &no, 1}};
    CHECK_RV(make_aes(s, "public aes", open_key, 1, &pub_key), CKR_OK);
    CHECK_RV(make_aes(s, "private aes", NULL, 0, &priv_key), CKR_OK);
    CK_BBOOL is_private = CK_TRUE;
    CK_ATTRIBUTE q = {CKA_PRIVATE, &is_private, 1};
    CHECK_RV(p11->C_GetAttributeValue(s, pub_key, &q, 1), CKR_OK);
    CHECK(is_private == CK_FALSE);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_by_label(s, "public aes", CKO_SECRET_KEY, &found) == 1 && found == pub_key);
    CHECK(find_by_label(s, "private aes", CKO_SECRET_KEY, NULL) == 0);
    CHECK_RV(encrypt_block(s, pub_key), CKR_OK);
    CHECK_RV(set_ulong(s, pub_key, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_USER_NOT_LOGGED_IN);
    /* Made without a login, as the backend makes a public token object. */
    CK_ATTRIBUTE still_open[] = {{CKA_PRIVATE, &no, 1}};
    CHECK_RV(make_aes(s, "made before login", still_open, 1, &later), CKR_OK);
    CHECK_RV(encrypt_block(s, later), CKR_OK);
    CHECK_RV(make_aes(s, "private before login", NULL, 0, &refused), CKR_USER_NOT_LOGGED_IN);
    const char *pin = getenv("CMK_PIN") ? getenv("CMK_PIN") : "1234";
    CHECK_RV(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    /* Disabled after login, the public key does nothing, logged in or not. */
    CHECK_RV(set_ulong(s, later, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK_RV(encrypt_block(s, later), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE private_mask = 0") == 2);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 3);
}

/* The KMS vocabulary and [policy] non_private_keys = raise make such keys private, with a
 * log line. */
static void test_non_private_keys_are_raised_by_policy_or_kms_vocabulary(void)
{
    fixture_append_policy("non_private_keys = raise");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE k1, k2;
    CK_ATTRIBUTE open_key[] = {{CKA_PRIVATE, &no, 1}};
    CHECK_RV(make_aes(s, "raised", open_key, 1, &k1), CKR_OK);
    fixture_close(s);
    fixture_append_policy("non_private_keys = allow");
    s = fixture_open();
    CK_ATTRIBUTE kms[] = {{CKA_PRIVATE, &no, 1}, {CKA_CMK_DESCRIPTION, "d", 1}};
    CHECK_RV(make_aes(s, "kms", kms, 2, &k2), CKR_OK);
    CHECK_RV(p11->C_Logout(s), CKR_OK);
    CHECK(find_count(s, NULL, 0, NULL) == 0);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE private_mask = 0") == 0);
    CHECK(inspect_log_count("CKA_PRIVATE=FALSE raised to TRUE: [policy] non_private_keys") == 1);
    CHECK(inspect_log_count("CKA_PRIVATE=FALSE raised to TRUE: a request in the KMS") == 1);
    fixture_append_policy("non_private_keys = never");
    char out[2048];
    CHECK_RV(fixture_init_capturing(out, sizeof(out)), CKR_GENERAL_ERROR);
    CHECK(strstr(out, "non_private_keys") && strstr(out, "must be 'allow' or 'raise'"));
}

/* cloud_specs_only: sizes the clouds do not offer are CKR_KEY_SIZE_RANGE, curves they do
 * not offer CKR_CURVE_NOT_SUPPORTED, each with a log line; the clouds' specs still work. */
static void test_cloud_specs_only_refuses_other_sizes_and_curves(void)
{
    fixture_append_policy("cloud_specs_only = true");
    CK_SESSION_HANDLE s = fixture_open();
    CK_MECHANISM hmac_gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h;
    for (CK_ULONG len = 16; len <= 64; len += 16) {
        CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1},
                            {CKA_VALUE_LEN, &len, sizeof(len)},
                            {CKA_SIGN, &yes, 1},
                            {CKA_LABEL, "mac", 3}};
        CHECK_RV(p11->C_GenerateKey(s, &hmac_gen, t, 4, &h),
                 len == 16 ? CKR_KEY_SIZE_RANGE : CKR_OK); /* AWS: HMAC_224..HMAC_512 */
    }
    CHECK_RV(make_rsa_pair(s, "rsa-1024", 1024, false), CKR_KEY_SIZE_RANGE);
    CHECK_RV(make_rsa_pair(s, "rsa-2048", 2048, false), CKR_OK);
    static const CK_BYTE secp224r1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21};
    CK_ATTRIBUTE ec_pub[] = {{CKA_TOKEN, &yes, 1},
                             {CKA_EC_PARAMS, (void *)secp224r1, sizeof(secp224r1)},
                             {CKA_LABEL, "ec-224", 6}};
    CK_ATTRIBUTE ec_priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_LABEL, "ec-224", 6}};
    CK_MECHANISM ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    CHECK_RV(p11->C_GenerateKeyPair(s, &ec_gen, ec_pub, 3, ec_priv, 3, &pub, &priv),
             CKR_CURVE_NOT_SUPPORTED);
    CHECK_RV(make_ec(s, "ec-256", NULL, 0, &pub, &priv), CKR_OK);
    CK_MECHANISM des3_gen = {CKM_DES3_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE des3[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "des3", 4}};
    CHECK_RV(p11->C_GenerateKey(s, &des3_gen, des3, 2, &h), CKR_MECHANISM_INVALID);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 5);
    CHECK(inspect_log_count("policy cloud_specs_only refuses it") == 4);
}

/* Item 11: Triple DES keys, which no cloud offers, are made as on the backend (a CMK of
 * spec DES3 or DES2) and encrypt, decrypt and find as there; the CMK rules still apply. */
static void test_des3_token_keys_work_as_on_the_backend(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE des3 = 0, des2 = 0, found = 0;
    CK_MECHANISM gen3 = {CKM_DES3_KEY_GEN, NULL, 0}, gen2 = {CKM_DES2_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE t3[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "payments des3", 13},
                         {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1}};
    CK_ATTRIBUTE t2[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "des2", 4}};
    CHECK_RV(p11->C_GenerateKey(s, &gen3, t3, 4, &des3), CKR_OK);
    CHECK_RV(p11->C_GenerateKey(s, &gen2, t2, 2, &des2), CKR_OK);
    CHECK(find_by_label(s, "payments des3", CKO_SECRET_KEY, &found) == 1 && found == des3);
    char spec[40];
    CHECK_RV(get_text(s, des3, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "DES3") == 0);
    CHECK_RV(get_text(s, des2, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "DES2") == 0);
    CK_ULONG type = 0, usage = 0;
    CHECK_RV(get_ulong(s, des3, CKA_KEY_TYPE, &type), CKR_OK);
    CHECK(type == CKK_DES3);
    CHECK_RV(get_ulong(s, des3, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    CHECK(CMK_USAGE_PRIMARY(usage) == CMK_USAGE_ENCRYPT_DECRYPT);
    unsigned char iv[8] = {1}, text[16] = "eight + eight b", ct[32], pt[32];
    CK_ULONG ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_MECHANISM cbc = {CKM_DES3_CBC, iv, sizeof(iv)};
    CHECK_RV(p11->C_EncryptInit(s, &cbc, des3), CKR_OK);
    CHECK_RV(p11->C_Encrypt(s, text, sizeof(text), ct, &ct_len), CKR_OK);
    CHECK(ct_len == sizeof(text) && memcmp(ct, text, sizeof(text)) != 0);
    CHECK_RV(p11->C_DecryptInit(s, &cbc, des3), CKR_OK);
    CHECK_RV(p11->C_Decrypt(s, ct, ct_len, pt, &pt_len), CKR_OK);
    CHECK(pt_len == sizeof(text) && memcmp(pt, text, sizeof(text)) == 0);
    /* A Disabled DES3 key encrypts nothing, as any CMK. */
    CHECK_RV(set_ulong(s, des3, CKA_CMK_KEY_STATE, CMK_STATE_DISABLED), CKR_OK);
    CHECK_RV(p11->C_EncryptInit(s, &cbc, des3), CKR_KEY_FUNCTION_NOT_PERMITTED);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE key_spec IN ('DES3', 'DES2')") == 2);
    CHECK(inspect_backend_material() == 2);
}

/* usage_conflict = reject: an RSA template asking both encrypt and sign is refused
 * (pkcs11-tool's default asks both); with the default (honour), it gets both. */
static void test_usage_conflict_reject_refuses_both_usages(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CHECK_RV(make_rsa_pair(s, "both-default", 2048, true), CKR_OK);
    fixture_close(s);
    fixture_append_policy("usage_conflict = reject");
    s = fixture_open();
    CHECK_RV(make_rsa_pair(s, "both-refused", 2048, true), CKR_TEMPLATE_INCONSISTENT);
    CHECK_RV(make_rsa_pair(s, "sign-only", 2048, false), CKR_OK);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk") == 2);
    CHECK(inspect_log_count("usage_conflict = reject refuses it") == 1);
}

static void test_session_key_copied_into_the_token_becomes_a_cmk(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    /* What Java's keytool does: a session pair, then a copy of the private key. */
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_OBJECT_HANDLE pub, priv, copy;
    CHECK_RV(p11->C_GenerateKeyPair(s, &mech, pt, 1, NULL, 0, &pub, &priv), CKR_OK);
    CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}, {CKA_ID, "javakey", 7}};
    CHECK_RV(p11->C_CopyObject(s, priv, to_token, 2, &copy), CKR_OK);
    char spec[40];
    CHECK_RV(get_text(s, copy, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_OK);
    CHECK(strcmp(spec, "EC_P256") == 0);
    CK_ULONG origin = 0, usage = 0;
    CHECK_RV(get_ulong(s, copy, CKA_CMK_ORIGIN, &origin), CKR_OK);
    CHECK(origin == CMK_ORIGIN_KMS); /* generated in the HSM (CKA_LOCAL) */
    CHECK_RV(get_ulong(s, copy, CKA_CMK_KEY_USAGE, &usage), CKR_OK);
    /* The copy keeps the source's flags (SoftHSMv2 defaults them TRUE), signing first. */
    CHECK(CMK_USAGE_PRIMARY(usage) == CMK_USAGE_SIGN_VERIFY);
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE q[] = {{CKA_SENSITIVE, &sensitive, 1}, {CKA_EXTRACTABLE, &extractable, 1}};
    CHECK_RV(p11->C_GetAttributeValue(s, copy, q, 2), CKR_OK);
    CHECK(sensitive == CK_TRUE && extractable == CK_FALSE);
    CHECK_RV(sign_verify_ec(s, copy, pub), CKR_OK);
    CK_ATTRIBUTE by_id[] = {{CKA_ID, "javakey", 7}};
    CHECK(find_count(s, by_id, 1, NULL) == 1);
    /* A session copy of a session key stays a plain session object. */
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE stay[] = {{CKA_TOKEN, &no, 1}};
    CHECK_RV(p11->C_CopyObject(s, priv, stay, 1, &copy), CKR_OK);
    CHECK_RV(get_text(s, copy, CKA_CMK_KEY_SPEC, spec, sizeof(spec)), CKR_ATTRIBUTE_TYPE_INVALID);
    fixture_close(s);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE state = 1") == 1);
}

static void test_keys_made_outside_cmkp11_are_listed_when_configured(void)
{
    /* A key made on the backend token directly, not through cmkp11. */
    CK_FUNCTION_LIST_PTR be = harness_load(getenv("CMK_BACKEND"));
    CHECK_RV(be->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CHECK_RV(be->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CK_SESSION_HANDLE bs;
    CHECK_RV(be->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &bs),
             CKR_OK);
    const char *pin = getenv("CMK_PIN");
    CHECK_RV(be->C_Login(bs, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 16;
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, &yes, 1}, {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_LABEL, "legacy", 6}};
    CK_OBJECT_HANDLE h;
    CHECK_RV(be->C_GenerateKey(bs, &mech, t, 3, &h), CKR_OK);
    be->C_Finalize(NULL);

    CK_SESSION_HANDLE s = fixture_open();
    /* By default every token object is assumed to come through cmkp11. */
    CHECK(find_by_label(s, "legacy", CKO_SECRET_KEY, NULL) == 0);
    CK_ATTRIBUTE by_label[] = {{CKA_LABEL, "legacy", 6}};
    CHECK(find_count(s, by_label, 1, NULL) == 0);
    fixture_close(s);
    FILE *f = fopen(getenv("CMKP11_CONF"), "a");
    fputs("\n[token]\nforeign_objects = true\n", f);
    fclose(f);
    s = fixture_open();
    CHECK(find_by_label(s, "legacy", CKO_SECRET_KEY, NULL) == 1);
    CHECK(find_count(s, by_label, 1, NULL) == 1);
    fixture_close(s);
}

/* A store made before aliases had rows of their own (schema 8: the alias was the label,
 * one per key, shared by both halves) keeps every key's name as its label and alias. */
static void test_a_schema_8_store_keeps_each_name_as_label_and_alias(void)
{
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, pub, priv, unnamed;
    unsigned char id[] = {0x42};
    CK_ATTRIBUTE with_id[] = {{CKA_ID, id, sizeof(id)}};
    CHECK_RV(make_aes(s, "legacy-aes", NULL, 0, &key), CKR_OK);
    CHECK_RV(make_ec(s, "legacy-pair", with_id, 1, &pub, &priv), CKR_OK);
    CHECK_RV(make_aes(s, NULL, NULL, 0, &unnamed), CKR_OK);
    fixture_close(s);
    /* Back to schema 8, as an older cmkp11 left it. */
    CHECK(inspect_store_exec(
              "UPDATE cmk SET alias = (SELECT alias FROM cmk_alias WHERE cmk_id = cmk.id), "
              "alias_norm = (SELECT alias_norm FROM cmk_alias WHERE cmk_id = cmk.id);"
              "DROP TABLE cmk_alias; DROP INDEX cmk_by_label; DROP INDEX cmk_by_pub_label;"
              "DROP INDEX cmk_by_pub_cka_id; ALTER TABLE cmk DROP COLUMN label;"
              "ALTER TABLE cmk DROP COLUMN pub_label; ALTER TABLE cmk DROP COLUMN pub_cka_id;"
              "ALTER TABLE audit DROP COLUMN prev_hash; ALTER TABLE audit DROP COLUMN hash;"
              "PRAGMA user_version = 8;") == 0);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE alias IS NOT NULL") == 2);
    s = fixture_open(); /* migrates */
    CHECK(inspect_store_count("PRAGMA user_version") >= 9);
    CK_OBJECT_HANDLE found = 0;
    CHECK(find_by_label(s, "legacy-aes", CKO_SECRET_KEY, &found) == 1 && found == key);
    CHECK(find_by_alias(s, "legacy-aes", &found) == 1 && found == key);
    CK_ATTRIBUTE by_label[] = {{CKA_LABEL, "legacy-pair", 11}};
    CHECK(find_count(s, by_label, 1, NULL) == 2);
    CHECK(find_count(s, with_id, 1, NULL) == 2);
    CHECK(find_by_alias(s, "legacy-pair", NULL) == 2); /* the pair's two objects */
    char text[64];
    CHECK_RV(get_text(s, unnamed, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(text[0] == '\0');
    CHECK_RV(aes_gcm_roundtrip(s, key), CKR_OK);
    CHECK_RV(sign_verify_ec(s, priv, pub), CKR_OK);
    CHECK(inspect_store_count("SELECT count(*) FROM cmk WHERE alias IS NOT NULL") == 0);
    fixture_close(s);
}

/* [policy] alias_from_label = false: only CKA_CMK_ALIAS gives a key an alias. */
static void test_policy_alias_from_label_false_takes_no_alias_from_labels(void)
{
    fixture_set_conf("policy", "alias_from_label = false");
    CK_SESSION_HANDLE s = fixture_open();
    CK_OBJECT_HANDLE key, named;
    CHECK_RV(make_aes(s, "plain", NULL, 0, &key), CKR_OK);
    char text[64];
    CHECK_RV(get_text(s, key, CKA_CMK_ALIAS, text, sizeof(text)), CKR_OK);
    CHECK(text[0] == '\0');
    CHECK(find_by_alias(s, "plain", NULL) == 0);
    CHECK_RV(make_aes_alias(s, "plain", "named", &named), CKR_OK);
    CHECK(find_by_alias(s, "named", NULL) == 1);
    CHECK(find_by_label(s, "plain", CKO_SECRET_KEY, NULL) == 2);
    fixture_close(s);
}

int main(int argc, char **argv)
{
    const char *module = getenv("CMK_MODULE");
    p11 = harness_load(module ? module : "libcmkp11.so");
    static const struct test_case tests[] = {
#define T(name) {#name, name}
        T(test_initialize_follows_the_spec),
        T(test_create_aes_key_with_alias_is_found_and_encrypts),
        T(test_default_cka_id_is_the_key_id_bytes),
        T(test_ec_pair_shares_client_id_and_signs),
        T(test_material_is_never_listed_as_a_second_object),
        T(test_alias_rules_are_enforced),
        T(test_duplicate_alias_ignoring_case_is_refused),
        T(test_labels_are_free_text_and_shared),
        T(test_a_key_has_several_aliases_that_move_and_go),
        T(test_a_schema_8_store_keeps_each_name_as_label_and_alias),
        T(test_policy_alias_from_label_false_takes_no_alias_from_labels),
        T(test_description_and_tags_round_trip_and_validate),
        T(test_usage_rules_follow_the_spec),
        T(test_rotation_policy_at_create),
        T(test_session_keys_pass_through_untouched),
        T(test_set_attributes_change_alias_description_and_state),
        T(test_destroy_schedules_deletion_and_hides_the_key),
        T(test_both_halves_are_destroyed_in_either_order_and_their_handles_go),
        T(test_a_public_session_changes_the_public_object_but_not_the_key),
        T(test_read_only_session_cannot_create),
        T(test_buffer_too_small_and_length_query),
        T(test_private_key_keeps_public_key_info_after_public_object_is_gone),
        T(test_rsa_pair_asking_both_usages_becomes_sign_verify),
        T(test_find_by_metadata_attributes),
        T(test_key_specs_follow_mechanism_and_template),
        T(test_interface_list_offers_pkcs11),
        T(test_keys_stay_usable_after_logout_and_last_session_close),
        T(test_cmk_keys_do_not_derive),
        T(test_key_imported_in_clear_becomes_a_cmk),
        T(test_session_key_copied_into_the_token_becomes_a_cmk),
        T(test_clear_import_can_be_refused_by_policy),
        T(test_cloud_specs_only_refuses_other_sizes_and_curves),
        T(test_des3_token_keys_work_as_on_the_backend),
        T(test_extractable_token_keys_are_ordinary_backend_objects),
        T(test_extractable_keys_can_be_refused_by_policy),
        T(test_extractable_keys_value_is_checked),
        T(test_non_sensitive_keys_can_stay_ordinary_objects_by_policy),
        T(test_non_private_keys_are_public_as_on_the_backend),
        T(test_non_private_keys_are_raised_by_policy_or_kms_vocabulary),
        T(test_usage_conflict_reject_refuses_both_usages),
        T(test_keys_made_outside_cmkp11_are_listed_when_configured),
#undef T
    };
    return harness_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
