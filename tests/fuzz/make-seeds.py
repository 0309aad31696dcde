#!/usr/bin/env python3
"""make-seeds.py - writes the checked-in seed corpora under tests/fuzz/corpus/.

Run it again after changing a harness's input layout. It only adds or overwrites the
seed-* files it names; crash-* regression inputs found by fuzzing are left alone.
The EC point, Ed25519 key and RSA modulus are real public keys made once with openssl.
"""
import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))

P256 = bytes.fromhex("06082a8648ce3d030107")
P384 = bytes.fromhex("06052b81040022")
P521 = bytes.fromhex("06052b81040023")
K256 = bytes.fromhex("06052b8104000a")
BRAINPOOL256 = bytes.fromhex("06092b2403030208010107")
SM2 = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301
ED25519 = bytes.fromhex("06032b6570")
ED448 = bytes.fromhex("06032b6571")


def printable(name):
    """CKA_EC_PARAMS as some clients send it: a PrintableString with the curve's name."""
    return bytes([0x13, len(name)]) + name.encode()


P256_POINT = bytes.fromhex(
    "0441bb080affc9ba07fb753d3eef4edb99b492047c651ba6e6614aec3bf6f50795"
    "72d51c98f6e9e63d4b1c58b442beef49b3535949de0af7a8d9163f5683df7925")
P256_COMPRESSED = bytes.fromhex(
    "0341bb080affc9ba07fb753d3eef4edb99b492047c651ba6e6614aec3bf6f50795")
K256_POINT = bytes.fromhex(
    "044b21725f7b001b7089c02ba36c07a9591ae938059bf2567457f1e61bcbc30fd8"
    "d7acf775f4d8ea83cd3bfe59ebaf888cbe2f5ab8a1ec66e101946a319a5bd1c1")
ED25519_KEY = bytes.fromhex(
    "b89b7ec383b0b97d6b949fc7a0f7a90144f1472d8ae9bcd5e06a0cb64601d9e4")
RSA_N = bytes.fromhex(
    "B15589274E1DD4BE47C53BED1C483E7538A05DF68DD026C137D5B5EF76E0CEA7CE52965671452F61"
    "529FACBDC7333CD2F32F6CEFA204C0830FAD7A3860A6B3771CCEBEF39C63E14C0DD37D1BFEF8B313"
    "0123D5AA63BF478E5836D08C1CF307A858D1129E5DFBAB346B7C5B0E18D59BF97362A4B460BC7DA5"
    "6D3B05A9AE5AB587")
RSA_E = bytes.fromhex("010001")


def octet_string(b):
    """DER OCTET STRING around b (CKA_EC_POINT as the spec wants it)."""
    n = len(b)
    if n < 0x80:
        return bytes([0x04, n]) + b
    return bytes([0x04, 0x81, n]) + b


def write(harness, name, data):
    folder = os.path.join(here, "corpus", harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


# fuzz_validate: selector byte (% 7): 0 alias, 1 description, 2 rotation period,
# 3 pending window, 4 tags, 5 utf8_length, 6 all of them.
for name, text in [
    ("alias-plain", b"orders"),
    ("alias-prefixed", b"alias/payments/prod"),
    ("alias-chars", b"team:app_1-key/v2"),
    ("alias-255", b"a" * 255),
    ("alias-256", b"a" * 256),
    ("alias-reserved-aws", b"alias/aws/s3"),
    ("alias-reserved-kms", b"KMS-key"),
    ("alias-reserved-cmk", b"cmk/x"),
    ("alias-reserved-default", b"app/Default"),
    ("alias-double-slash", b"a//b"),
    ("alias-trailing-slash", b"a/b/"),
    ("alias-leading-slash", b"/a"),
    ("alias-space", b"my key"),
]:
    write("validate", name, b"\x00" + text)
write("validate", "description", b"\x01" + "Orders key \u2014 caf\u00e9\tline\r\n2".encode())
# At and just past the 8192-character limit (2-byte characters: the limit is in
# characters, not bytes). These also raise libFuzzer's -max_len to fit them.
write("validate", "description-8192", b"\x01" + b"x" * 8192)
write("validate", "description-9000-bytes", b"\x01" + "\u20ac".encode() * 3000)
write("validate", "description-8193", b"\x01" + b"x" * 8193)
write("validate", "description-control", b"\x01bell\x07")
write("validate", "description-bad-utf8", b"\x01\xc3\x28")
for name, text in [("rotation-days", b"365d"), ("rotation-hours", b"8760h"),
                   ("rotation-minutes", b"525600m"), ("rotation-seconds", b"604800s"),
                   ("rotation-bare", b"2560"), ("rotation-too-long", b"2561d"),
                   ("rotation-unit", b"12w")]:
    write("validate", name, b"\x02" + text)
write("validate", "pending-7", b"\x037")
write("validate", "pending-1096", b"\x031096")
write("validate", "pending-1097", b"\x031097")
write("validate", "tags", b"\x04env=prod\nteam=payments\ncost-center=42\n")
write("validate", "tags-no-value", b"\x04flag\nowner=\n")
write("validate", "tags-utf8", b"\x04" + "r\u00e9gion=\u6771\u4eac\nk=a=b".encode())
write("validate", "tags-duplicate", b"\x04a=1\na=2")
write("validate", "tags-reserved", b"\x04aws:createdBy=x\nAliyunTag=y")
write("validate", "tags-51", b"\x04" + b"".join(b"k%d=v\n" % i for i in range(51)))
write("validate", "utf8", b"\x05" + "a\u00e9\u20ac\U0001f511".encode())
write("validate", "utf8-truncated", b"\x05\xf0\x9f\x94")
write("validate", "all", b"\x06orders")

# fuzz_config: whole cmkp11.conf files.
with open(os.path.join(here, "..", "..", "conf", "cmkp11.conf"), "rb") as f:
    write("config", "installed", f.read())
write("config", "minimal", b"[backend]\nmodule = /usr/lib/softhsm/libsofthsm2.so\n"
      b"token_label = b\n[token]\nstore = cmk.db\n")
write("config", "full", b"[backend]\nmodule = lib/backend.so\ntoken_serial = 1234abcd\n"
      b"[token]\nlabel = cmkp11\nstore = /var/lib/cmkp11/cmk.db\nforeign_objects = yes\n"
      b"[log]\nlevel = debug\nfile = cmkp11.log\n"
      b"[policy]\npending_window_days = 7\nusage_conflict = reject\n"
      b"allow_immediate_destroy = on\ncloud_specs_only = 1\nrefuse_clear_import = true\n"
      b"max_keys = 100000000\n")
write("config", "bad-section", b"[backend]\nmodule = m\n[nope]\nx = 1\n")
write("config", "bad-value", b"[policy]\npending_window_days = 6\n")
write("config", "long-label", b"[token]\nlabel = " + b"x" * 33 + b"\n")
write("config", "syntax", b"[backend\nmodule\n")
write("config", "missing-store", b"[backend]\nmodule = m\ntoken_label = t\n")

# fuzz_keyspec: flags, CKA_VALUE_LEN (8 bytes), CKA_MODULUS_BITS (8 bytes), CKA_EC_PARAMS.
def keyspec(flags, value_len=0, bits=0, params=b""):
    return bytes([flags]) + struct.pack("<QQ", value_len, bits) + params

write("keyspec", "aes-256", keyspec(0x01, value_len=32))
write("keyspec", "aes-128-cloud-only", keyspec(0x41, value_len=16))
write("keyspec", "value-len-4-bytes", keyspec(0x03, value_len=24))
write("keyspec", "hmac-256", keyspec(0x81, value_len=32))
write("keyspec", "rsa-2048", keyspec(0x04, bits=2048))
write("keyspec", "rsa-1024-cloud-only", keyspec(0x44, bits=1024))
write("keyspec", "ec-p256", keyspec(0x10, params=P256))
write("keyspec", "ec-p384", keyspec(0x10, params=P384))
write("keyspec", "ec-secp256k1", keyspec(0x10, params=K256))
write("keyspec", "ec-brainpool", keyspec(0x10, params=BRAINPOOL256))
write("keyspec", "ed25519", keyspec(0x10, params=ED25519))
write("keyspec", "ed448-cloud-only", keyspec(0x50, params=ED448))
write("keyspec", "printable-edwards25519", keyspec(0x10, params=printable("edwards25519")))
write("keyspec", "printable-prime256v1", keyspec(0x10, params=printable("prime256v1")))
# The SM2 curve, by OID and by name: an EC curve whose keys have a type of their own
# (CKK_CMK_SM2); the oracle once expected CKK_EC and a run found it by chance.
write("keyspec", "ec-sm2", keyspec(0x10, params=SM2))
write("keyspec", "printable-sm2", keyspec(0x10, params=printable("SM2")))
write("keyspec", "ec-params-null", keyspec(0x30, params=P256))
write("keyspec", "everything", keyspec(0x95, value_len=32, bits=3072, params=P521))

# fuzz_pubkey: 2-byte big-endian length of the first part, first part, second part.
def pubkey(first, second):
    return struct.pack(">H", len(first)) + first + second

write("pubkey", "p256-der-point", pubkey(P256, octet_string(P256_POINT)))
write("pubkey", "p256-raw-point", pubkey(P256, P256_POINT))
write("pubkey", "p256-compressed", pubkey(P256, octet_string(P256_COMPRESSED)))
write("pubkey", "p384-der-point", pubkey(P384, octet_string(b"\x04" + b"\x11" * 96)))
write("pubkey", "secp256k1", pubkey(K256, octet_string(K256_POINT)))
write("pubkey", "p256-printable", pubkey(printable("prime256v1"), octet_string(P256_POINT)))
write("pubkey", "ed25519-der", pubkey(ED25519, octet_string(ED25519_KEY)))
write("pubkey", "ed25519-raw", pubkey(ED25519, ED25519_KEY))
write("pubkey", "ed25519-printable", pubkey(printable("edwards25519"), ED25519_KEY))
write("pubkey", "ed448-der", pubkey(ED448, octet_string(b"\x5a" * 57)))
write("pubkey", "rsa-1024", pubkey(RSA_N, RSA_E))
write("pubkey", "rsa-tiny", pubkey(b"\xc3", b"\x03"))

# fuzz_envelope: CKM_CMK_ENVELOPE ciphertext as it is: format (0x01 AES-GCM, 0x02 SM4-CTR +
# HMAC-SM3), key id (16), version (4, big-endian), IV (12), body, tag (16 for 0x01, 32 for
# 0x02).
def envelope(version, body=b"", fmt=1, key_id=bytes(range(16)), tag=16):
    return bytes([fmt]) + key_id + struct.pack(">I", version) + b"\x07" * 12 + body + b"\x00" * tag

write("envelope", "v3-empty", envelope(3))
write("envelope", "v1-text", envelope(1, b"hello world"))
write("envelope", "short", envelope(1)[:20])
write("envelope", "other-format", envelope(1, fmt=3))
write("envelope", "sm4-text", envelope(2, b"hello world", fmt=2, tag=32))
write("envelope", "sm4-empty", envelope(1, fmt=2, tag=32))
# An SM4 envelope long enough for a GCM tag but not for its own 32-byte MAC.
write("envelope", "sm4-short-mac", envelope(1, b"abc", fmt=2, tag=16))
write("envelope", "version-0", envelope(0))

# fuzz_import_token: CKA_CMK_IMPORT_TOKEN as it is: "CMKT", format 1, key id (36), wrap id
# length (28) and wrap id, algorithm, modulus bits (2, big-endian), valid-to (8,
# big-endian), then a 32-byte MAC (not checked by the decoder).
def import_token(magic=b"CMKT", fmt=1, wrap_len=28, alg=2, bits=2048, valid_to=1800000000):
    key_id = b"0f0e0d0c-0b0a-4908-8706-050403020100"
    wrap_id = b"CMKW" + bytes(range(16)) + b"\x5a" * 8
    return (magic + bytes([fmt]) + key_id + bytes([wrap_len]) + wrap_id + bytes([alg]) +
            struct.pack(">H", bits) + struct.pack(">Q", valid_to) + b"\xa5" * 32)

write("import_token", "sha256-2048", import_token())
write("import_token", "key-wrap-4096", import_token(alg=4, bits=4096))
write("import_token", "short", import_token()[:100])
write("import_token", "other-magic", import_token(magic=b"CMKX"))
write("import_token", "format-2", import_token(fmt=2))
write("import_token", "wrap-len-27", import_token(wrap_len=27))


# fuzz_import_oaep: EME-OAEP encoded messages (RFC 8017 7.1.1 step 2) with SHA-256,
# MGF1-SHA-256 and an empty label, as the raw RSA of a good blob yields them.
def mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + struct.pack(">I", counter)).digest()
        counter += 1
    return out[:length]


def oaep_encode(message, k=256, seed=bytes(range(32)), label_hash=None):
    lhash = label_hash or hashlib.sha256(b"").digest()
    db = lhash + b"\x00" * (k - len(message) - 66) + b"\x01" + message
    masked_db = bytes(a ^ b for a, b in zip(db, mgf1(seed, k - 33)))
    masked_seed = bytes(a ^ b for a, b in zip(seed, mgf1(masked_db, 32)))
    return b"\x00" + masked_seed + masked_db


write("import_oaep", "aes256-2048", oaep_encode(bytes(range(32))))
write("import_oaep", "aes128-3072", oaep_encode(bytes(16), k=384))
write("import_oaep", "empty-4096", oaep_encode(b"", k=512))
write("import_oaep", "longest-2048", oaep_encode(b"\x77" * (256 - 66)))
write("import_oaep", "other-label", oaep_encode(bytes(32), label_hash=b"\x11" * 32))
write("import_oaep", "first-byte-set", b"\x01" + oaep_encode(bytes(32))[1:])
