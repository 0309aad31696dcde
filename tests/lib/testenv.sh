# testenv.sh - sourced by tests and scripts: a private SoftHSMv2 token and cmkp11
# store under one folder, touching no global configuration.
#   cmk_testenv_setup DIR   -> exports SOFTHSM2_CONF, CMKP11_CONF, CMK_PIN, CMK_SO_PIN,
#                              CMK_MODULE (the built module), CMK_BACKEND, CMK_TOKEN

CMK_BACKEND=${CMK_BACKEND:-/usr/lib/softhsm/libsofthsm2.so}
CMK_PIN=${CMK_PIN:-1234}
CMK_SO_PIN=${CMK_SO_PIN:-5678}
CMK_TOKEN=${CMK_TOKEN:-cmkp11}
CMK_BACKEND_TOKEN=${CMK_BACKEND_TOKEN:-cmkp11-backend}
export CMK_BACKEND CMK_PIN CMK_SO_PIN CMK_TOKEN CMK_BACKEND_TOKEN

cmk_testenv_setup() {
    local dir=$1
    mkdir -p "$dir/tokens"
    cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    export SOFTHSM2_CONF="$dir/softhsm2.conf"
    softhsm2-util --init-token --free --label "$CMK_BACKEND_TOKEN" \
        --pin "$CMK_PIN" --so-pin "$CMK_SO_PIN" >/dev/null
    cat > "$dir/cmkp11.conf" <<CONF
[backend]
module = $CMK_BACKEND
token_label = $CMK_BACKEND_TOKEN

[token]
label = $CMK_TOKEN
store = $dir/cmk.db

[log]
level = ${CMK_LOG_LEVEL:-warning}
file = $dir/cmkp11.log

[import]
oaep_decode_in_module = true
CONF
    export CMKP11_CONF="$dir/cmkp11.conf"
}
