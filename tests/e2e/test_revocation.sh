#!/usr/bin/env bash
# End to end through a real Postfix: revocation is checked before every
# signature (regulation R5), against a real `openssl ocsp` responder on
# the address the certificates name (127.0.0.1:18081).
#   r1  alice, status good by OCSP: signed
#   r2  revoked@kota.go.id, revoked by OCSP: never signed (delivered
#       unsigned by signing.on_no_certificate = deliver), incident logged
#   r3  responder down, status not cached: fail-closed, the client gets
#       4xx and nothing is delivered; incident logged
#   r4  responder back, the same message is resent: signed
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

e2e_init
e2e_tmpdir W
T=$W/pf/tmp
PKI=${PKI:-$W/pki}
"$E2E_ROOT/tests/pki/gen-pki.sh" "$PKI" >/dev/null
SEGELCTL=$BUILD/segelctl
CONF=$W/segel/segel.conf
MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"
OCSP_PORT=18081

"$SEGELCTL" init --dir "$W/segel" --domain kota.go.id >/dev/null
"$SEGELCTL" -c "$CONF" trust add "$PKI/ca.pem" >/dev/null
for u in alice dave revoked; do
    "$SEGELCTL" -c "$CONF" keystore import "$PKI/$u.p12" --passphrase-file "$PKI/$u.pass" >/dev/null
done
# no CRL in the store and no CRL server: the OCSP responder is the only source

OCSP_PID=""
ocsp_start() {
    openssl ocsp -index "$PKI/sub-ca.index.txt" -port "$OCSP_PORT" -rsigner "$PKI/sub-ca.pem" \
        -rkey "$PKI/sub-ca.key" -CA "$PKI/sub-ca.pem" -nmin 60 -ignore_err \
        >>"$W/ocsp.log" 2>&1 &
    OCSP_PID=$!
    wait_until 10 port_listening "$OCSP_PORT"
}
ocsp_stop() {
    [[ -n $OCSP_PID ]] && kill "$OCSP_PID" 2>/dev/null && wait "$OCSP_PID" 2>/dev/null || true
    OCSP_PID=""
}
trap 'ocsp_stop; e2e_cleanup' EXIT

pf_setup "$W/pf" "$MILTER_SOCK"
pf_add_user alice@kota.go.id alice-pw
pf_add_user dave@kota.go.id dave-pw
pf_add_user revoked@kota.go.id revoked-pw
sink_start
ocsp_start
milter_start "$CONF" "$MILTER_SOCK"
pf_start

tok() { printf 'e2e-rev-%s-%s' "$1" "$$"; }
signed_and_verifies() {
    is_smime_signed "$1" && openssl cms -verify -CAfile "$PKI/ca.pem" -in "$1" -out /dev/null 2>/dev/null
}

# r1: good status from the responder
k=$(tok r1)
send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
    --header "Subject: $k" --body "status good" || true
if f=$(wait_delivered_token "$k" 30); then
    sink_message "$f" >"$T/r1.eml"
    check "r1: good by OCSP: delivered signed and verifies" signed_and_verifies "$T/r1.eml"
else
    fail "r1: delivered"
fi

# r2: revoked by the responder
k=$(tok r2)
send_auth revoked@kota.go.id --from revoked@kota.go.id --to carol@partner.example \
    --header "Subject: $k" --body "revoked sender" || true
if f=$(wait_delivered_token "$k" 30); then
    sink_message "$f" >"$T/r2.eml"
    check_not "r2: revoked by OCSP: not signed" is_smime_signed "$T/r2.eml"
else
    fail "r2: delivered (unsigned, signing.on_no_certificate = deliver)"
fi
check "r2: logged reason=certificate-revoked" grep -q "result=unsigned reason=certificate-revoked from=revoked@kota.go.id" "$E2E_MILTER_LOG"
check "r2: incident names the revocation (OCSP)" grep -q "incident=signing-certificate-revoked address=revoked@kota.go.id certificate revoked on .*(OCSP)" "$E2E_MILTER_LOG"

# r3: responder down, dave's status not cached yet: fail-closed
ocsp_stop
k=$(tok r3)
send_auth dave@kota.go.id --from dave@kota.go.id --to carol@partner.example \
    --header "Subject: $k" --body "responder down" || true
check "r3: responder down: the client gets a 4xx reply" swaks_reply_matches '^4[0-9][0-9]'
check "r3: logged reason=revocation-unknown" grep -q "result=tempfail reason=revocation-unknown from=dave@kota.go.id" "$E2E_MILTER_LOG"
check "r3: incident=revocation-unknown" grep -q "incident=revocation-unknown address=dave@kota.go.id" "$E2E_MILTER_LOG"
sleep 2
check "r3: nothing delivered" sh -c "! grep -rlq '$k' '$E2E_W/out' 2>/dev/null"

# r4: responder back: the resent message is signed
ocsp_start
send_auth dave@kota.go.id --from dave@kota.go.id --to carol@partner.example \
    --header "Subject: $k" --body "responder down" || true
if f=$(wait_delivered_token "$k" 30); then
    sink_message "$f" >"$T/r4.eml"
    check "r4: responder back: resent message signed and verifies" signed_and_verifies "$T/r4.eml"
else
    fail "r4: delivered"
fi

check "Postfix queue empty at the end" pf_queue_empty
e2e_summary
