#!/usr/bin/env bash
# End to end through a real Postfix: dave's private key lives in a PKCS#11
# token (SoftHSM2), the keystore holds only its URI, and the milter's
# signer process signs through OpenSSL's pkcs11 engine.  The delivered mail
# must verify with openssl cms and with gpgsm.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

e2e_init
for t in softhsm2-util gpgsm; do
    command -v "$t" >/dev/null 2>&1 || e2e_die "missing tool: $t"
done
e2e_tmpdir W
T=$W/pf/tmp
PKI=${PKI:-$W/pki}
"$E2E_ROOT/tests/pki/gen-pki.sh" "$PKI" >/dev/null
SEGELCTL=$BUILD/segelctl
CONF=$W/segel/segel.conf
MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"
MODULE=/usr/lib/softhsm/libsofthsm2.so

# the token: dave's key is imported into it, then only the URI is stored
mkdir -p "$W/hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$W/hsm/tokens" >"$W/hsm/softhsm2.conf"
export SOFTHSM2_CONF=$W/hsm/softhsm2.conf
softhsm2-util --init-token --free --label segel-e2e --pin 246810 --so-pin 135790 >/dev/null
softhsm2-util --import "$PKI/dave.key" --token segel-e2e --label dave --id 0d --pin 246810 >/dev/null
URI='pkcs11:token=segel-e2e;object=dave;type=private'

"$SEGELCTL" init --dir "$W/segel" --domain kota.go.id >/dev/null
printf '246810\n' >"$W/segel/token.pin"
chmod 600 "$W/segel/token.pin"
sed -i "s|^  master_passphrase_file = \"master.key\";|&\n  pkcs11_module = \"$MODULE\";\n  pkcs11_pin_file = \"token.pin\";|" "$CONF"
"$SEGELCTL" -c "$CONF" trust add "$PKI/ca.pem" >/dev/null
"$SEGELCTL" -c "$CONF" cert import "$PKI/sub-ca.pem" >/dev/null
"$SEGELCTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem" >/dev/null
check "keystore import-pkcs11 checks the token key against the certificate" \
    "$SEGELCTL" -c "$CONF" keystore import-pkcs11 --cert "$PKI/dave.pem" --uri "$URI"
check_not "a certificate whose key is not in the token is refused" \
    "$SEGELCTL" -c "$CONF" keystore import-pkcs11 --cert "$PKI/alice.pem" --uri "$URI"
check "the keystore holds the URI, not a key" \
    sh -c "sqlite3 '$W/segel/data/keystore.db' \"select format from keys\" | grep -qx pkcs11-uri"

pf_setup "$W/pf" "$MILTER_SOCK"
pf_add_user dave@kota.go.id dave-pw
sink_start
milter_start "$CONF" "$MILTER_SOCK"
pf_start
gpgsm_home GH "$PKI/ca.pem" "$PKI/sub-ca.pem"

k="e2e-pkcs11-$$"
send_auth dave@kota.go.id --from dave@kota.go.id --to carol@partner.example \
    --header "Subject: $k" --body "signed inside the token" || true
if f=$(wait_delivered_token "$k" 30); then
    sink_message "$f" >"$T/p1.eml"
    check "token key: delivered multipart/signed" is_smime_signed "$T/p1.eml"
    check "token key: openssl cms -verify" openssl_verify "$T/p1.eml" "$PKI/ca.pem" "$T/p1.openssl.log"
    check "token key: gpgsm --verify" gpgsm_verify "$GH" "$T/p1.eml" "$T/p1.gpgsm.log"
    check "token key: signed with dave's certificate" \
        sh -c "openssl cms -verify -noverify -in '$T/p1.eml' -signer '$T/p1.signer.pem' -out /dev/null 2>/dev/null && openssl x509 -in '$T/p1.signer.pem' -noout -email | grep -qx dave@kota.go.id"
else
    fail "token key: delivered"
fi
check "milter logged result=signed for dave" grep -q "result=signed reason=ok from=dave@kota.go.id" "$E2E_MILTER_LOG"
check "Postfix queue empty at the end" pf_queue_empty
e2e_summary
