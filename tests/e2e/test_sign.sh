#!/usr/bin/env bash
# tests/e2e/test_sign.sh - end-to-end signing tests: a private Postfix on
# loopback, the real segel-milter, smtp-sink capturing what Postfix
# delivers, and independent verification with openssl cms and gpgsm.
#
# Usage (as root, from anywhere):
#   tests/e2e/test_sign.sh
# Environment:
#   BUILD=build          where segel-milter and segelctl are
#   PKI=DIR              use (or create) the demo PKI in DIR
#   SUBMIT_PORT INBOUND_PORT REINJECT_PORT SINK_PORT MILTER_PORT
#                        see lib.sh (defaults 10587 10025 10026 10999 10901)
#   E2E_KEEP=1           keep the work directory even on success
#   E2E_VERBOSE=1        show every SMTP transcript
#   E2E_ONLY="a c e"     run only these case groups (h a b c d e f g)
#
# Ends with "N passed, M failed"; exits non-zero if anything failed.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

e2e_init

for b in segel-milter segelctl; do
    [[ -x $BUILD/$b ]] || e2e_die "$BUILD/$b not built (run make first)"
done
for t in gpgsm perl; do
    command -v "$t" >/dev/null 2>&1 || e2e_die "missing tool: $t"
done

RUN_ID=$$.$RANDOM
want() { [[ -z ${E2E_ONLY:-} || " $E2E_ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------
# Set-up

e2e_tmpdir W
T=$W/pf/tmp     # scratch (created by pf_setup)
PKI=${PKI:-$W/pki}
"$E2E_ROOT/tests/pki/gen-pki.sh" "$PKI" >/dev/null

SEGELCTL=$BUILD/segelctl
CONF_DIR=$W/segel
CONF=$CONF_DIR/segel.conf
MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"

setup_log=$W/setup.log
run_setup() {
    if ! "$@" >>"$setup_log" 2>&1; then
        cat "$setup_log" >&2
        e2e_die "set-up step failed: $*"
    fi
}
run_setup "$SEGELCTL" init --dir "$CONF_DIR" --domain kota.go.id --domain '*.kota.go.id'
run_setup "$SEGELCTL" -c "$CONF" trust add "$PKI/ca.pem"
for u in alice bob dave; do
    run_setup "$SEGELCTL" -c "$CONF" keystore import "$PKI/$u.p12" \
        --passphrase-file "$PKI/$u.pass"
done
# carol is external: her key in the keystore must not make her mail signed.
if ! "$SEGELCTL" -c "$CONF" keystore import "$PKI/carol.p12" \
    --passphrase-file "$PKI/carol.pass" >>"$setup_log" 2>&1; then
    e2e_log "note: keystore import of carol's (external) p12 refused"
fi
# Revocation status: the demo certificates name a CRL distribution point
# and an OCSP responder on 127.0.0.1 that nobody serves here, so give the
# keystore the CRLs (valid for ten years) instead; otherwise signing
# tempfails with reason=revocation-unknown (revocation.on_unknown_sign).
if "$SEGELCTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem" \
    --url http://127.0.0.1:18080/sub-ca.crl >>"$setup_log" 2>&1 &&
    "$SEGELCTL" -c "$CONF" crl import "$PKI/ca.crl.pem" >>"$setup_log" 2>&1; then
    ok "setup: segelctl crl import (sub-ca, root)"
else
    fail "setup: segelctl crl import: $(tail -n 1 "$setup_log")"
fi
if "$SEGELCTL" -c "$CONF" config check >"$W/config-check.log" 2>&1; then
    ok "setup: segelctl config check"
else
    fail "setup: segelctl config check: $(tr '\n' ' ' <"$W/config-check.log")"
fi

pf_setup "$W/pf" "$MILTER_SOCK"
declare -A LOGIN_PASS=(
    [alice@kota.go.id]=alice-pw-1
    [bob@dinas.kota.go.id]=bob-pw-2
    [dave@kota.go.id]=dave-pw-3
    [carol@partner.example]=carol-pw-4
)
for u in "${!LOGIN_PASS[@]}"; do
    pf_add_user "$u" "${LOGIN_PASS[$u]}"
done

sink_start
milter_start "$CONF" "$MILTER_SOCK"
pf_start
gpgsm_home GH "$PKI/ca.pem" "$PKI/sub-ca.pem"
e2e_log "work directory $W (Postfix $SUBMIT_PORT/$INBOUND_PORT/$REINJECT_PORT, sink $SINK_PORT, milter $MILTER_PORT)"

# ---------------------------------------------------------------------------
# Case helpers

# tok NAME: unique Subject token for a case.
tok() { printf 'e2e-%s-%s' "$1" "$RUN_ID"; }

# summary_for QID: wait (5 s) for and print the milter's summary line.
summary_for() {
    local qid=$1
    [[ -n $qid ]] || return 1
    wait_until 5 grep -Eq "(^|[^A-Za-z0-9])$qid: result=" "$E2E_MILTER_LOG" || true
    milter_summary "$qid"
}

# expect_signed CASE TOKEN SIGNER: the message with TOKEN was delivered
# multipart/signed (S/MIME, sha-256), verifies with openssl and gpgsm,
# and was signed with SIGNER's certificate.
expect_signed() {
    local name=$1 token=$2 signer=$3 qid f m sum email
    qid=$(swaks_queue_id)
    if ! swaks_accepted; then
        fail "$name: message accepted (got: $(swaks_final_reply))"
        return 1
    fi
    if ! f=$(wait_delivered_token "$token" 30); then
        fail "$name: delivered"
        return 1
    fi
    m=$T/$name.eml
    sink_message "$f" >"$m"
    if ! is_smime_signed "$m"; then
        fail "$name: multipart/signed with protocol=application/pkcs7-signature (Content-Type: $(msg_header "$m" content-type))"
        echo "    milter: $(summary_for "$qid")"
        return 1
    fi
    ok "$name: multipart/signed, protocol=application/pkcs7-signature"
    check "$name: micalg=sha-256" [ "$(smime_micalg "$m" | tr '[:upper:]' '[:lower:]')" = sha-256 ]
    if openssl_verify "$m" "$PKI/ca.pem" "$T/$name.openssl.log"; then
        ok "$name: openssl cms -verify -CAfile ca.pem"
    else
        fail "$name: openssl cms -verify -CAfile ca.pem"
        sed -n '1,10s/^/    | /p' "$T/$name.openssl.log"
    fi
    if gpgsm_verify "$GH" "$m" "$T/$name.gpgsm.log"; then
        ok "$name: gpgsm --verify (trusted chain)"
    else
        fail "$name: gpgsm --verify (trusted chain)"
        sed -n '1,20s/^/    | /p' "$T/$name.gpgsm.log"
    fi
    email=""
    if openssl cms -verify -noverify -in "$m" -out /dev/null \
        -signer "$T/$name.signer.pem" >/dev/null 2>&1; then
        email=$(openssl x509 -in "$T/$name.signer.pem" -noout -email 2>/dev/null | head -n 1)
    fi
    check "$name: signed by $signer (signer cert: ${email:-?})" [ "$email" = "$signer" ]
    check "$name: no 8-bit octets in the delivered message" check_not_8bit "$m"
    sum=$(summary_for "$qid")
    check "$name: milter summary result=signed ($sum)" grep -q 'result=signed' <<<"$sum"
}

check_not_8bit() { ! has_8bit "$1"; }

# expect_unsigned CASE TOKEN: delivered, not signed, and the milter log has
# a result=unsigned summary line with a reason for this queue id.
expect_unsigned() {
    local name=$1 token=$2 qid f m sum ct
    qid=$(swaks_queue_id)
    if ! swaks_accepted; then
        fail "$name: message accepted (got: $(swaks_final_reply))"
        return 1
    fi
    if ! f=$(wait_delivered_token "$token" 30); then
        fail "$name: delivered"
        return 1
    fi
    m=$T/$name.eml
    sink_message "$f" >"$m"
    ct=$(msg_header "$m" content-type)
    if [[ ${ct,,} == multipart/signed* ]] || grep -qi 'application/\(x-\)\?pkcs7-signature' "$m"; then
        fail "$name: delivered unsigned (it was signed)"
    else
        ok "$name: delivered unsigned"
    fi
    sum=$(summary_for "$qid")
    if grep -q 'result=unsigned' <<<"$sum" && grep -q 'reason=[^ ]' <<<"$sum"; then
        ok "$name: milter log says why: ${sum#*: result=}"
    else
        fail "$name: milter summary result=unsigned reason=... for $qid (got: ${sum:-nothing})"
        show_tail "$E2E_MILTER_LOG" 5
    fi
}

# postfix_log_mark / postfix_log_since MARK: new Postfix log lines.
postfix_log_mark() { wc -l <"$(pf_log)"; }
postfix_log_since() { tail -n +"$(($1 + 1))" "$(pf_log)"; }

# rejected_qid MARK: queue id of the milter-reject logged since MARK.
rejected_qid() {
    postfix_log_since "$1" | sed -n 's/.*: \([0-9A-F]\{6,\}\): milter-reject: .*/\1/p' | tail -n 1
}

# count_delivered_token TOKEN: number of complete captures with TOKEN.
count_delivered_token() {
    local n=0 f
    while IFS= read -r f; do
        grep -qF -- "$1" "$f" && n=$((n + 1))
    done < <(delivered_files)
    echo "$n"
}

# milter_log_since_has LINE ERE: milter log after LINE matches ERE (case-insensitive).
milter_log_since_has() { tail -n +"$(($1 + 1))" "$E2E_MILTER_LOG" | grep -Eqi -- "$2"; }

# set_conf KEY VALUE: replace `KEY = ...;` in segel.conf (first match).
set_conf() {
    local key=$1 value=$2
    if ! grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$CONF"; then
        e2e_die "set_conf: $key not in $CONF"
    fi
    sed -i -E "0,/^([[:space:]]*${key}[[:space:]]*=).*;/s//\\1 $value;/" "$CONF"
}

# ---------------------------------------------------------------------------
# h. The harness itself: SASL, relay control, byte-exact capture

if want h; then
    echo "# h. harness: private Postfix, SASL, smtp-sink capture"
    send_mail --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $(tok h1)" || true
    reply=$(swaks_final_reply)
    if [[ $E2E_SWAKS_RC -ne 0 && $reply =~ ^554\ 5\.7\.1 ]]; then
        ok "h1: unauthenticated relaying on the submission port refused ($reply)"
    else
        fail "h1: unauthenticated relaying on the submission port refused (got: $reply)"
    fi
    send_mail --auth PLAIN --auth-user alice@kota.go.id --auth-password wrong \
        --from alice@kota.go.id --to carol@partner.example --header "Subject: $(tok h2)" || true
    check "h2: wrong SASL password refused ($(swaks_final_reply))" swaks_reply_matches '^535 '

    # Reinject port: no milter; the sink capture must give back the exact
    # octets (8-bit text, leading dots, long line) after Postfix's Received.
    k=$(tok h3)
    raw=$T/h3-raw.eml
    {
        printf '%s\r\n' 'From: alice@kota.go.id' 'To: carol@partner.example' \
            "Subject: $k" 'MIME-Version: 1.0' \
            'Content-Type: text/plain; charset=utf-8' 'Content-Transfer-Encoding: 8bit' '' \
            'Surat edaran: rapat koordinasi hari Senin — “penting”' \
            '.baris diawali titik' '..dua titik' '.' '' ' ' 'spasi di akhir '
        head -c 990 /dev/zero | tr '\0' x
        printf '\r\n%s\r\n' 'baris terakhir'
    } >"$raw"
    smtp_raw --port "$REINJECT_PORT" --body8 --from alice@kota.go.id \
        --to carol@partner.example "$raw" || true
    qid=$(swaks_queue_id)
    if f=$(wait_delivered_token "$k" 30); then
        sink_message "$f" >"$T/h3.eml"
        n=$(grep -n -m1 '^From: ' "$T/h3.eml" | cut -d: -f1)
        tail -n +"$n" "$T/h3.eml" >"$T/h3-body.eml"
        check "h3: reinject port delivers the exact octets" cmp -s "$raw" "$T/h3-body.eml"
        check "h3: reinject port bypasses the milter" [ -z "$(milter_summary "$qid")" ]
        check "h3: envelope seen by the sink" grep -qx 'MAIL <alice@kota.go.id> BODY=8BITMIME' <(sink_envelope "$f")
    else
        fail "h3: reinject port delivers"
    fi
fi

# ---------------------------------------------------------------------------
# a. alice, authenticated, to carol: signed (RSA)

if want a; then
    echo "# a. authenticated alice -> signed (RSA)"
    k=$(tok a1)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" --body "Halo Carol, ini surat resmi. $k" || true
    expect_signed a1 "$k" alice@kota.go.id || true

    k=$(tok a2)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "From: \"Alice Lestari\" <alice@kota.go.id>" --header "Subject: $k" || true
    expect_signed a2-display-name "$k" alice@kota.go.id || true
fi

# ---------------------------------------------------------------------------
# b. bob (ECDSA), authenticated: signed

if want b; then
    echo "# b. authenticated bob -> signed (ECDSA)"
    k=$(tok b1)
    send_auth bob@dinas.kota.go.id --from bob@dinas.kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_signed b1 "$k" bob@dinas.kota.go.id || true
fi

# ---------------------------------------------------------------------------
# c. Not entitled to a signature: delivered unsigned, with a logged reason

if want c; then
    echo "# c. not entitled -> delivered unsigned"
    k=$(tok c1)
    send_mail --port "$INBOUND_PORT" --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_unsigned c1-unauthenticated "$k" || true

    k=$(tok c2)
    send_auth dave@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_unsigned c2-login-dave-from-alice "$k" || true

    k=$(tok c3)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "From: alice@kota.go.id, dave@kota.go.id" \
        --header "Sender: alice@kota.go.id" --header "Subject: $k" || true
    expect_unsigned c3-two-from-addresses "$k" || true

    k=$(tok c4)
    send_auth alice@kota.go.id --from dave@kota.go.id --to carol@partner.example \
        --header "From: alice@kota.go.id" --header "Subject: $k" || true
    expect_unsigned c4-envelope-dave-from-alice-login-alice "$k" || true

    k=$(tok c5)
    send_auth dave@kota.go.id --from dave@kota.go.id --to carol@partner.example \
        --header "From: alice@kota.go.id" --header "Subject: $k" || true
    expect_unsigned c5-envelope-dave-from-alice-login-dave "$k" || true

    k=$(tok c6)
    send_auth carol@partner.example --from carol@partner.example --to alice@kota.go.id \
        --header "Subject: $k" || true
    expect_unsigned c6-external-carol "$k" || true

    k=$(tok c7)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "X-Skip-Signing: yes" --header "Subject: $k" || true
    expect_signed c7-x-skip-signing-ignored "$k" alice@kota.go.id || true

    k=$(tok c8)
    send_mail --port "$INBOUND_PORT" --from alice@kota.go.id --to carol@partner.example \
        --header "X-Signer: alice@kota.go.id" --header "Subject: $k" || true
    expect_unsigned c8-unauthenticated-x-signer "$k" || true

    k=$(tok c9)
    send_auth dave@kota.go.id --from dave@kota.go.id --to carol@partner.example \
        --header "X-Signer: alice@kota.go.id" --header "Subject: $k" || true
    expect_signed c9-dave-with-x-signer-alice "$k" dave@kota.go.id || true
fi

# ---------------------------------------------------------------------------
# d. on_unauthorized = "reject" (SIGHUP reload): 5.7.x

if want d; then
    echo "# d. on_unauthorized = reject"
    set_conf on_unauthorized '"reject"'
    mark=$(wc -l <"$E2E_MILTER_LOG")
    milter_reload
    # Give the supervisor time to hand the new configuration to its worker.
    wait_until 5 milter_log_since_has "$mark" reload || sleep 2
    check "d: milter survives SIGHUP" milter_running

    k=$(tok d1)
    pmark=$(postfix_log_mark)
    send_auth dave@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    reply=$(swaks_final_reply)
    if [[ $E2E_SWAKS_RC -ne 0 && $reply =~ ^5[0-9][0-9][\ -]5\.7\. ]]; then
        ok "d1: login dave, From alice rejected with 5.7.x ($reply)"
    else
        fail "d1: login dave, From alice rejected with 5.7.x (rc=$E2E_SWAKS_RC, got: $reply)"
    fi
    qid=$(rejected_qid "$pmark")
    sum=$(summary_for "$qid")
    check "d1: milter summary result=rejected for ${qid:-?} (${sum:-none})" grep -q 'result=rejected' <<<"$sum"

    k=$(tok d2)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_signed d2-good-after-reload "$k" alice@kota.go.id || true

    # Back to the default, through a full restart this time.
    set_conf on_unauthorized '"deliver"'
    milter_stop
    milter_start "$CONF" "$MILTER_SOCK"
    k=$(tok d3)
    send_auth dave@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_unsigned d3-deliver-again-after-restart "$k" || true
fi

# ---------------------------------------------------------------------------
# e. 8-bit UTF-8 text and a binary attachment

if want e; then
    echo "# e. 8-bit text + binary attachment"
    k=$(tok e1)
    # Attachment: 48 lines of 64 random octets (no NUL, CR, LF), joined by
    # CRLF.  That is the most a "binary" part can be over SMTP without
    # BINARYMIME (RFC 3030): 8BITMIME lines of < 998 octets ending in CRLF,
    # no NUL, no bare CR or LF.  Postfix accepts Content-Transfer-Encoding:
    # binary over 8BITMIME; the milter must re-encode it for signing.
    att=$T/e1-attachment.bin
    # (Temporary files, not "| head -c": no SIGPIPE under pipefail.)
    head -c 20000 /dev/urandom | LC_ALL=C tr -d '\000\r\n' >"$att.rnd"
    head -c 3072 "$att.rnd" | LC_ALL=C fold -b -w 64 | LC_ALL=C sed 's/$/\r/' >"$att.tmp"
    # Drop the final CRLF: it belongs to the boundary delimiter.
    head -c -2 "$att.tmp" >"$att"
    rm -f "$att.rnd" "$att.tmp"
    text=$T/e1-text.txt
    printf '%s\r\n' \
        'Surat edaran: rapat koordinasi hari Senin — “penting”' \
        '' \
        'Yth. Bapak/Ibu Kepala Dinas,' \
        'mohon hadir pada rapat koordinasi pukul 09.00 WIB di ruang rapat utama.' \
        'Terima kasih atas perhatian dan kerja samanya.' >"$text"
    msg=$T/e1-raw.eml
    {
        printf '%s\r\n' \
            'From: alice@kota.go.id' \
            'To: carol@partner.example' \
            "Subject: $k" \
            "Message-ID: <$k@kota.go.id>" \
            'MIME-Version: 1.0' \
            'Content-Type: multipart/mixed; boundary="=_e2e_mixed_boundary"' \
            '' \
            'This is a multi-part message in MIME format.' \
            '--=_e2e_mixed_boundary' \
            'Content-Type: text/plain; charset=utf-8' \
            'Content-Transfer-Encoding: 8bit' \
            ''
        cat "$text"
        printf '%s\r\n' \
            '--=_e2e_mixed_boundary' \
            'Content-Type: application/octet-stream; name="lampiran.bin"' \
            'Content-Disposition: attachment; filename="lampiran.bin"' \
            'Content-Transfer-Encoding: binary' \
            ''
        cat "$att"
        printf '\r\n%s\r\n' '--=_e2e_mixed_boundary--'
    } >"$msg"
    check "e1: test message really has 8-bit octets" has_8bit "$msg"
    smtp_raw --auth alice@kota.go.id --body8 --from alice@kota.go.id \
        --to carol@partner.example "$msg" || true
    if expect_signed e1 "$k" alice@kota.go.id; then
        m=$T/e1.eml
        if mime_part "$m" 1 >"$T/e1-signed-part" &&
            mime_part "$T/e1-signed-part" 2 >"$T/e1-att-part" &&
            mime_decode "$T/e1-att-part" >"$T/e1-att-decoded"; then
            check "e1: decoded attachment equals the original octets" cmp -s "$att" "$T/e1-att-decoded"
        else
            fail "e1: attachment found in the signed part"
        fi
        if mime_part "$T/e1-signed-part" 1 >"$T/e1-text-part" &&
            mime_decode "$T/e1-text-part" >"$T/e1-text-decoded"; then
            # The text's final CRLF belongs to the boundary delimiter; QP
            # decoding yields LF line ends, so compare without CRs.
            check "e1: decoded text equals the original UTF-8 text" \
                cmp -s <(head -c -2 "$text" | tr -d '\r') <(tr -d '\r' <"$T/e1-text-decoded")
            echo "    text part: $(msg_header "$T/e1-text-part" content-type); $(msg_header "$T/e1-text-part" content-transfer-encoding)"
        else
            fail "e1: text part found in the signed part"
        fi
    fi
fi

# ---------------------------------------------------------------------------
# f. Malformed MIME: rejected (on_malformed = reject), milter keeps serving

if want f; then
    echo "# f. malformed MIME -> rejected"
    f_case() { # NAME TOKEN SWAKS-ARGS...
        local name=$1 token=$2 pmark reply qid sum
        shift 2
        pmark=$(postfix_log_mark)
        send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
            --header "Subject: $token" "$@" || true
        reply=$(swaks_final_reply)
        if [[ $E2E_SWAKS_RC -ne 0 && $reply =~ ^5[0-9][0-9][\ -] ]]; then
            ok "$name: rejected with 5xx ($reply)"
        else
            fail "$name: rejected with 5xx (rc=$E2E_SWAKS_RC, got: $reply)"
        fi
        qid=$(rejected_qid "$pmark")
        sum=$(summary_for "$qid")
        if [[ -n $qid ]] && grep -q 'result=rejected' <<<"$sum"; then
            ok "$name: milter log: $sum"
        else
            fail "$name: milter log has result=rejected for ${qid:-?} (got: ${sum:-nothing})"
            show_tail "$E2E_MILTER_LOG" 5
        fi
        # grep -c reads all its input (grep -q could SIGPIPE the first grep).
        if [[ -n $qid ]] &&
            (($(grep -F "$qid" "$E2E_MILTER_LOG" | grep -ciE 'mime|boundary|malformed') > 0)); then
            ok "$name: milter log explains the MIME problem"
        else
            fail "$name: milter log explains the MIME problem (lines for ${qid:-?}: $(grep -c "${qid:-NOQID}" "$E2E_MILTER_LOG"))"
        fi
    }
    f_case f1-no-boundary "$(tok f1)" \
        --header "MIME-Version: 1.0" --header "Content-Type: multipart/mixed" \
        --body "no boundary parameter at all"
    f_case f2-boundary-never-appears "$(tok f2)" \
        --header "MIME-Version: 1.0" \
        --header 'Content-Type: multipart/mixed; boundary="never-used-boundary"' \
        --body "This multipart body has no delimiter line."
    check "f: milter still running" milter_running
    k=$(tok f3)
    send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --header "Subject: $k" || true
    expect_signed f3-good-after-malformed "$k" alice@kota.go.id || true
fi

# ---------------------------------------------------------------------------
# g. kill -9 of the milter while Postfix is talking to it

if want g; then
    echo "# g. kill -9 mid-message"
    # A ~3 MB message: larger than milter.memory_threshold (spool path).
    g_message() { # TOKEN FILE
        {
            printf '%s\r\n' 'From: alice@kota.go.id' 'To: carol@partner.example' \
                "Subject: $1" 'MIME-Version: 1.0' \
                'Content-Type: text/plain; charset=us-ascii' ''
            head -c 2300000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
        } >"$2"
    }

    # g_after_kill CASE TOKEN FILE: the client saw 4xx, nothing delivered or
    # queued; restart, resend -> delivered exactly once, signed.
    g_after_kill() {
        local name=$1 token=$2 file=$3 reply
        reply=$(swaks_final_reply)
        if [[ $E2E_SWAKS_RC -ne 0 && $reply =~ ^4[0-9][0-9][\ -] ]]; then
            ok "$name: client got a temporary failure ($reply)"
        else
            fail "$name: client got a temporary failure (rc=$E2E_SWAKS_RC, got: ${reply:-nothing})"
        fi
        check "$name: nothing queued" pf_queue_empty
        if ! milter_running; then
            # While the milter is down Postfix must tempfail new mail too.
            send_auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
                --header "Subject: $(tok "$name-down")" || true
            reply=$(swaks_final_reply)
            if [[ $E2E_SWAKS_RC -ne 0 && $reply =~ ^4[0-9][0-9][\ -] ]]; then
                ok "$name: milter down -> new mail tempfailed ($reply)"
            else
                fail "$name: milter down -> new mail tempfailed (got: ${reply:-nothing})"
            fi
            milter_start "$CONF" "$MILTER_SOCK"
        fi
        smtp_raw --auth alice@kota.go.id --from alice@kota.go.id \
            --to carol@partner.example "$file" || true
        expect_signed "$name-resent" "$token" alice@kota.go.id || true
        # A queue run later, still exactly one copy.
        sleep 6
        check "$name: delivered exactly once" [ "$(count_delivered_token "$token")" -eq 1 ]
        check "$name: queue empty" pf_queue_empty
    }

    # g1: kill supervisor and worker(s) after 1 MB of DATA; Postfix has the
    # milter connection open (it has seen connect/helo/mail/rcpt/data).
    k=$(tok g1)
    g_message "$k" "$T/g1.eml"
    smtp_raw --auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --pause-at 1000000 --pause-cmd 'milter_kill9' "$T/g1.eml" || true
    g_after_kill g1-kill-during-data "$k" "$T/g1.eml"

    # g2: freeze the milter (SIGSTOP) just before the final ".", so Postfix
    # is blocked sending the content to it / waiting for its reply; then
    # kill -9 it while Postfix waits.
    k=$(tok g2)
    g_message "$k" "$T/g2.eml"
    size=$(stat -c %s "$T/g2.eml")
    g2_freeze_and_kill() {
        local pids
        pids=$(milter_pids)
        # shellcheck disable=SC2086 # word splitting of the pid list
        kill -STOP $pids
        echo "$pids" >"$T/g2.pids"
        (
            sleep 3
            # shellcheck disable=SC2086
            kill -9 $pids
        ) &
        G2_KILLER=$!
    }
    smtp_raw --auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
        --pause-at "$((size - 10))" --pause-cmd 'g2_freeze_and_kill' "$T/g2.eml" || true
    wait "$G2_KILLER" 2>/dev/null || true
    milter_kill9 # reap and forget the killed processes
    g_after_kill g2-kill-while-postfix-waits "$k" "$T/g2.eml"

    # g3: kill -9 only the supervisor's children (worker, and signer
    # process if any) mid-DATA; the supervisor should bring a new worker
    # up, and the next message is signed without a restart.
    workers=$(child_pids "$E2E_MILTER_PID")
    if [[ -n $workers ]]; then
        k=$(tok g3)
        g_message "$k" "$T/g3.eml"
        smtp_raw --auth alice@kota.go.id --from alice@kota.go.id --to carol@partner.example \
            --pause-at 1000000 --pause-cmd "kill -9 ${workers//$'\n'/ }" "$T/g3.eml" || true
        check "g3: supervisor survives the worker's death" milter_running
        new_worker() {
            local w
            w=$(child_pids "$E2E_MILTER_PID")
            [[ -n $w && $w != "$1" ]] && port_listening "$MILTER_PORT"
        }
        check "g3: supervisor started a new worker" wait_until 15 new_worker "$workers"
        g_after_kill g3-kill-worker-only "$k" "$T/g3.eml"
    else
        e2e_log "g3 skipped: segel-milter has no worker processes"
    fi
fi

# ---------------------------------------------------------------------------

check "milter still running at the end" milter_running
check "Postfix queue empty at the end" pf_queue_empty
e2e_summary
