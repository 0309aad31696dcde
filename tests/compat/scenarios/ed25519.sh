# An Ed25519 pair (SoftHSMv2 2.6 has EdDSA) made and used by pkcs11-tool.
run keygen "${PL[@]}" --keypairgen --key-type EC:edwards25519 --label ed --id 91
printf 'eddsa message\n' >msg
run sign "${PL[@]}" --sign --mechanism EDDSA --id 91 -i msg -o sig
run verify "${PL[@]}" --verify --mechanism EDDSA --id 91 -i msg --signature-file sig
run list "${PL[@]}" --list-objects --type privkey
