/* fuzz_import_oaep.c - libFuzzer harness for import_oaep_sha256_decode (src/import_oaep.c),
 * the module's EME-OAEP decoder (SHA-256, MGF1-SHA-256, empty label) for the raw RSA output
 * of an imported blob, which an attacker chooses.
 *
 * Input: the encoded message em, in place (its length is the modulus length k). The
 * decoder must agree with OpenSSL's own OAEP check on every input: the same accept or
 * refuse, and the same message. */
#define OPENSSL_SUPPRESS_DEPRECATED /* RSA_padding_check_PKCS1_OAEP_mgf1 is the reference */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "import_oaep.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char work[2 * 1024], out[1024], ref[1024];
    if (size > 1024) return 0; /* RSA 8192 at most; the decoder refuses more */
    size_t out_len = 0;
    int rc = import_oaep_sha256_decode(size ? data : NULL, size, work, out, sizeof(out), &out_len);
    int ref_len = -1;
    if (size >= 2 * 32 + 2)
        ref_len = RSA_padding_check_PKCS1_OAEP_mgf1(ref, (int)sizeof(ref), data, (int)size,
                                                    (int)size, NULL, 0, EVP_sha256(), EVP_sha256());
    ERR_clear_error();
    CHECK((rc == 0) == (ref_len >= 0));
    if (rc != 0) return 0;
    CHECK(out_len == (size_t)ref_len && memcmp(out, ref, out_len) == 0);
    CHECK(out_len <= size - 2 * 32 - 2);
    return 0;
}
