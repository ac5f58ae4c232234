#!/usr/bin/env bash
# deploy/demo.sh - Segel demonstration on a private Postfix on loopback.
#
# Run by `make demo` (after `make all`) from the repository root, as root.
# It never touches the system Postfix:
#
#   demo/pki/   the demo PKI (tests/pki/gen-pki.sh; kept between runs)
#   demo/run/   this run's Segel configuration (demo/run/segel/) and,
#               at the end, copies of the logs (demo/run/logs/)
#   demo/out/   the delivered messages as clean RFC 5322 files (*.eml,
#               CRLF line ends, exactly as Postfix delivered them)
#
# The Postfix instance, smtp-sink and gpgsm home live in a temporary
# directory under /tmp that is removed when the demo succeeds.  Ports
# (loopback only) differ from the e2e tests so both can run at once:
#   DEMO_SUBMIT_PORT=11587 DEMO_INBOUND_PORT=11025 DEMO_REINJECT_PORT=11026
#   DEMO_SINK_PORT=11999 DEMO_MILTER_PORT=11901
#
# Exits non-zero if any step fails; the last line is the summary.

set -euo pipefail

ROOT=$(pwd)
if [[ ! -f $ROOT/tests/e2e/lib.sh ]]; then
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
cd "$ROOT"

SUBMIT_PORT=${DEMO_SUBMIT_PORT:-11587}
INBOUND_PORT=${DEMO_INBOUND_PORT:-11025}
REINJECT_PORT=${DEMO_REINJECT_PORT:-11026}
SINK_PORT=${DEMO_SINK_PORT:-11999}
MILTER_PORT=${DEMO_MILTER_PORT:-11901}
export SUBMIT_PORT INBOUND_PORT REINJECT_PORT SINK_PORT MILTER_PORT
E2E_ROOT=$ROOT
export E2E_ROOT

# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

DEMO=$ROOT/demo
PKI=$DEMO/pki
RUN=$DEMO/run
OUT=$DEMO/out
SEGELCTL=$BUILD/segelctl
MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"

step() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }

demo_fail() {
    printf 'demo: FAILED: %s\n' "$*" >&2
    exit 1
}

# run_quiet LOG CMD...: run, keep the output in LOG, show it on failure.
run_quiet() {
    local log=$1
    shift
    if ! "$@" >>"$log" 2>&1; then
        sed 's/^/   | /' "$log" | tail -n 20 >&2
        demo_fail "$*"
    fi
}

demo_finish() {
    local rc=$?
    # Keep the logs of this run next to its configuration.
    if [[ -n $E2E_W && -d $E2E_W/log ]]; then
        mkdir -p "$RUN/logs"
        cp -p "$E2E_W"/log/*.log "$RUN/logs/" 2>/dev/null || true
    fi
    e2e_cleanup
    return "$rc"
}

e2e_init
trap 'demo_finish' EXIT

for b in segel-milter segelctl; do
    [[ -x $BUILD/$b ]] || demo_fail "$BUILD/$b not built (run make all)"
done
command -v gpgsm >/dev/null 2>&1 || demo_fail "gpgsm not installed"

# ---------------------------------------------------------------------------
step "1. Demo PKI in demo/pki/"
mkdir -p "$DEMO"
run_quiet "$DEMO/pki.log" "$ROOT/tests/pki/gen-pki.sh" "$PKI"
rm -f "$DEMO/pki.log"
for n in ca sub-ca alice bob; do
    info "$(printf '%-8s' "$n")$(openssl x509 -in "$PKI/$n.pem" -noout -subject -nameopt oneline,-esc_msb)"
done

# ---------------------------------------------------------------------------
step "2. Segel configuration in demo/run/segel/"
rm -rf -- "$RUN" "$OUT"
mkdir -p "$RUN" "$OUT"
CONF_DIR=$RUN/segel
CONF=$CONF_DIR/segel.conf
SETUP_LOG=$RUN/setup.log
run_quiet "$SETUP_LOG" "$SEGELCTL" init --dir "$CONF_DIR" \
    --domain kota.go.id --domain '*.kota.go.id'
run_quiet "$SETUP_LOG" "$SEGELCTL" -c "$CONF" trust add "$PKI/ca.pem"
for u in alice bob dave walikota; do
    run_quiet "$SETUP_LOG" "$SEGELCTL" -c "$CONF" keystore import "$PKI/$u.p12" \
        --passphrase-file "$PKI/$u.pass"
done
# The CRLs stand in for the (unserved) CRL distribution point and OCSP
# responder that the demo certificates name.
run_quiet "$SETUP_LOG" "$SEGELCTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem" \
    --url http://127.0.0.1:18080/sub-ca.crl
run_quiet "$SETUP_LOG" "$SEGELCTL" -c "$CONF" crl import "$PKI/ca.crl.pem"
info "internal domains: kota.go.id, *.kota.go.id"
info "signing keys:     alice, bob (ECDSA), dave, walikota"
info "revocation:       CRLs of Demo Email CA and Demo Root CA imported"
if "$SEGELCTL" -c "$CONF" config check >>"$SETUP_LOG" 2>&1; then
    info "segelctl config check: OK"
else
    # Not fatal for the demo: the milter checks its configuration itself.
    info "segelctl config check reported: $(tail -n 1 "$SETUP_LOG")"
fi

# ---------------------------------------------------------------------------
step "3. Private Postfix, segel-milter and smtp-sink on 127.0.0.1"
e2e_tmpdir PFW
pf_setup "$PFW" "$MILTER_SOCK"
pf_add_user alice@kota.go.id demo-alice
pf_add_user walikota@kota.go.id demo-walikota
sink_start
milter_start "$CONF" "$MILTER_SOCK"
pf_start
gpgsm_home GH "$PKI/ca.pem" "$PKI/sub-ca.pem"
info "submission 127.0.0.1:$SUBMIT_PORT (SASL), inbound :$INBOUND_PORT, reinject :$REINJECT_PORT"
info "segel-milter $MILTER_SOCK, delivery captured by smtp-sink :$SINK_PORT"
info "Postfix work directory: $PFW (logs copied to demo/run/logs/ at the end)"

SIGNED=0
DELIVERED=()

# show_message NAME TOKEN: wait for delivery, save demo/out/NAME.eml, show
# what it is and verify it with openssl and gpgsm.
show_message() {
    local name=$1 token=$2 f eml qid sum email
    qid=$(swaks_queue_id)
    if ! swaks_accepted; then
        fail "$name: Postfix accepted the message (got: $(swaks_final_reply))"
        return 1
    fi
    info "Postfix queue id $qid"
    if ! f=$(wait_delivered_token "$token" 30); then
        fail "$name: delivered"
        return 1
    fi
    eml=$OUT/$name.eml
    sink_message "$f" >"$eml"
    DELIVERED+=("$eml")
    sum=$(milter_summary "$qid")
    info "milter: ${sum#*: }"
    info "delivered: demo/out/$name.eml ($(stat -c %s "$eml") bytes)"
    info "Content-Type: $(msg_header "$eml" content-type)"
    if ! is_smime_signed "$eml"; then
        fail "$name: message is S/MIME signed"
        return 1
    fi
    if has_8bit "$eml"; then
        fail "$name: delivered message is 7-bit clean"
    else
        info "7-bit clean: yes"
    fi
    local ok_openssl=0 ok_gpgsm=0
    if openssl_verify "$eml" "$PKI/ca.pem" "$PFW/tmp/$name.openssl.log"; then
        ok_openssl=1
    fi
    info "openssl cms -verify -CAfile demo/pki/ca.pem: $(tail -n 1 "$PFW/tmp/$name.openssl.log")"
    if gpgsm_verify "$GH" "$eml" "$PFW/tmp/$name.gpgsm.log"; then
        ok_gpgsm=1
    fi
    info "gpgsm --verify: $(grep -m1 -E 'Good signature|BAD signature|invalid|error' "$PFW/tmp/$name.gpgsm.log" |
        sed 's/^gpgsm: //' || echo 'no result')"
    email=""
    if openssl cms -verify -noverify -in "$eml" -out /dev/null \
        -signer "$PFW/tmp/$name.signer.pem" >/dev/null 2>&1; then
        email=$(openssl x509 -in "$PFW/tmp/$name.signer.pem" -noout -email | head -n 1)
    fi
    info "signer certificate: ${email:-?}"
    if ((ok_openssl && ok_gpgsm)); then
        ok "$name: signed and verified (openssl + gpgsm)"
        SIGNED=$((SIGNED + 1))
    else
        fail "$name: signed and verified (openssl=$ok_openssl gpgsm=$ok_gpgsm)"
        return 1
    fi
}

RUN_ID=$(date +%Y%m%d%H%M%S)

# ---------------------------------------------------------------------------
step "4. Alice (logged in as alice@kota.go.id) writes to Carol at a partner"
T1="Undangan rapat koordinasi [demo $RUN_ID/1]"
send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
    --header "From: \"Alice Lestari\" <alice@kota.go.id>" \
    --header "Subject: $T1" \
    --body "Yth. Ibu Carol,

dengan hormat kami mengundang Ibu ke rapat koordinasi hari Senin.

Salam,
Alice Lestari
Pemerintah Kota" || true
show_message 01-alice-to-carol "$T1" || true

# ---------------------------------------------------------------------------
step "5. 8-bit Indonesian text with a binary attachment (sent as 8BITMIME)"
T2="Surat edaran dengan lampiran [demo $RUN_ID/2]"
att=$PFW/tmp/lampiran.bin
# "binary" content over SMTP without BINARYMIME: lines < 998 octets, CRLF,
# no NUL/CR/LF inside; Segel re-encodes it (base64) before signing.
head -c 20000 /dev/urandom | LC_ALL=C tr -d '\000\r\n' >"$att.rnd"
head -c 4096 "$att.rnd" | LC_ALL=C fold -b -w 64 | LC_ALL=C sed 's/$/\r/' >"$att.tmp"
head -c -2 "$att.tmp" >"$att" # the last CRLF belongs to the delimiter
rm -f "$att.rnd" "$att.tmp"
msg=$PFW/tmp/demo2.eml
{
    printf '%s\r\n' \
        'From: "Alice Lestari" <alice@kota.go.id>' \
        'To: "Carol Partner" <carol@partner.example>' \
        "Subject: $T2" \
        'MIME-Version: 1.0' \
        'Content-Type: multipart/mixed; boundary="=_segel_demo_mixed"' \
        '' \
        'This is a multi-part message in MIME format.' \
        '--=_segel_demo_mixed' \
        'Content-Type: text/plain; charset=utf-8' \
        'Content-Transfer-Encoding: 8bit' \
        '' \
        'Surat edaran: rapat koordinasi hari Senin — “penting”' \
        '' \
        'Mohon seluruh kepala dinas hadir tepat waktu. Berkas terlampir.' \
        '--=_segel_demo_mixed' \
        'Content-Type: application/octet-stream; name="lampiran.bin"' \
        'Content-Disposition: attachment; filename="lampiran.bin"' \
        'Content-Transfer-Encoding: binary' \
        ''
    cat "$att"
    printf '\r\n%s\r\n' '--=_segel_demo_mixed--'
} >"$msg"
smtp_raw --auth alice@kota.go.id --body8 --from alice@kota.go.id \
    --to carol@partner.example "$msg" || true
if show_message 02-alice-8bit-attachment "$T2"; then
    eml=$OUT/02-alice-8bit-attachment.eml
    if mime_part "$eml" 1 >"$PFW/tmp/d2-signed" &&
        mime_part "$PFW/tmp/d2-signed" 2 >"$PFW/tmp/d2-att" &&
        mime_decode "$PFW/tmp/d2-att" >"$PFW/tmp/d2-att.bin" &&
        cmp -s "$att" "$PFW/tmp/d2-att.bin"; then
        info "attachment: $(msg_header "$PFW/tmp/d2-att" content-transfer-encoding), decodes to the original $(stat -c %s "$att") octets"
    else
        fail "02-alice-8bit-attachment: attachment decodes to the original octets"
    fi
fi

# ---------------------------------------------------------------------------
# DEMO STEP (later): encryption.
#   Import carol's certificate (segelctl -c "$CONF" cert import
#   "$PKI/carol.pem"), send alice -> carol, and show that the delivered
#   message is application/pkcs7-mime; smime-type=enveloped-data and
#   decrypts with demo/pki/carol.key (openssl cms -decrypt).
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# DEMO STEP (later): quarantined spoof.
#   Send From: walikota@kota.go.id without authentication from outside
#   (inbound port $INBOUND_PORT) and show that Segel quarantines it
#   instead of delivering it, with the reason in the milter log.
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
step "Summary"
for f in "${DELIVERED[@]}"; do
    info "demo/out/$(basename "$f")"
done
info "logs: demo/run/logs/ (postfix.log, milter.log, sink.log, swaks.log)"
if ((E2E_FAILED > 0)); then
    for n in "${E2E_FAILED_NAMES[@]}"; do
        info "FAILED: $n"
    done
    E2E_SUMMARY_DONE=1
    echo "demo: FAILED ($SIGNED of 2 messages signed and verified)"
    exit 1
fi
E2E_SUMMARY_DONE=1
echo "demo: $SIGNED messages signed and verified"
