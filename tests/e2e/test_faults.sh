#!/usr/bin/env bash
# Fault injection (issue 6): STRESS_COUNT (default 2000) messages through a
# real Postfix while the whole milter (supervisor, signer and worker) is
# killed with kill -9 at random moments STRESS_KILLS times (default 5) and
# restarted.  Postfix runs with milter_default_action = tempfail; the
# client retries temporary failures like a real one.  Afterwards every
# message must have been delivered exactly once, and every one (all are
# from alice@kota.go.id through a trusted relay, so policy requires a
# signature) must be signed.  Prints: sent, delivered, lost, duplicated,
# unsigned-but-required.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

COUNT=${STRESS_COUNT:-2000}
KILLS=${STRESS_KILLS:-5}
CONNS=${STRESS_CONNECTIONS:-8}
e2e_init
e2e_tmpdir W
T=$W/pf/tmp
PKI=${PKI:-$W/pki}
"$E2E_ROOT/tests/pki/gen-pki.sh" "$PKI" >/dev/null
SEGELCTL=$BUILD/segelctl
CONF=$W/segel/segel.conf
MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"

"$SEGELCTL" init --dir "$W/segel" --domain kota.go.id >/dev/null
# the load comes from a trusted relay (127.0.0.1): internal senders are signed
sed -i 's|^  trusted_networks = \[ \];|  trusted_networks = [ "127.0.0.1/32" ];|' "$CONF"
sed -i 's|^  log_facility = "mail";|  log_facility = "mail";\n  log_level = "warning";|' "$CONF"
"$SEGELCTL" -c "$CONF" trust add "$PKI/ca.pem" >/dev/null
"$SEGELCTL" -c "$CONF" keystore import "$PKI/alice.p12" --passphrase-file "$PKI/alice.pass" >/dev/null
"$SEGELCTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem" >/dev/null

pf_setup "$W/pf" "$MILTER_SOCK"
sink_start
milter_start "$CONF" "$MILTER_SOCK"
pf_start

prefix="stress-$$"
python3 "$E2E_ROOT/tests/stress/smtpload.py" 127.0.0.1 "$INBOUND_PORT" "$COUNT" "$CONNS" \
    alice@kota.go.id carol@partner.example "$prefix" "$W/sent.tsv" >"$W/load.out" 2>&1 &
LOAD=$!

# kill -9 the whole milter at random moments while the load runs
kills=0
while ((kills < KILLS)) && kill -0 "$LOAD" 2>/dev/null; do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + (r % 2000) / 1000 }')"
    kill -0 "$LOAD" 2>/dev/null || break
    milter_kill9
    kills=$((kills + 1))
    sleep 0.$((RANDOM % 9 + 1))
    milter_start "$CONF" "$MILTER_SOCK"
done
wait "$LOAD" || true
cat "$W/load.out"
check "the milter was killed $KILLS times during the load (got $kills)" test "$kills" -ge 1
pf_flush
wait_until 120 pf_queue_empty || true
check "Postfix queue empty (nothing stuck)" pf_queue_empty
sleep 2

# count what the sink received, by the unique token in the Subject
: >"$W/delivered.txt"
: >"$W/unsigned.txt"
for f in $(delivered_files); do
    sink_message "$f" >"$T/m.eml"
    tok=$(sed -n "s/^Subject: \($prefix-[0-9]*\).*/\1/p" "$T/m.eml" | head -1)
    [[ -n $tok ]] || continue
    echo "$tok" >>"$W/delivered.txt"
    if ! is_smime_signed "$T/m.eml" ||
        ! openssl cms -verify -CAfile "$PKI/ca.pem" -in "$T/m.eml" -out /dev/null 2>/dev/null; then
        echo "$tok" >>"$W/unsigned.txt"
    fi
done
accepted=$(awk -F'\t' '$3 == "accepted"' "$W/sent.tsv" | wc -l)
retried=$(awk -F'\t' '$2 > 1' "$W/sent.tsv" | wc -l)
delivered=$(sort -u "$W/delivered.txt" | wc -l)
dups=$(sort "$W/delivered.txt" | uniq -d | wc -l)
lost=$(comm -23 <(awk -F'\t' '$3 == "accepted" {print $1}' "$W/sent.tsv" | sort) \
    <(sort -u "$W/delivered.txt") | wc -l)
unsigned=$(sort -u "$W/unsigned.txt" | wc -l)
echo "faults: sent=$COUNT accepted=$accepted retried-after-tempfail=$retried kills=$kills"
echo "faults: delivered=$delivered lost=$lost duplicated=$dups unsigned-but-required=$unsigned"
check "every message was accepted (after retries)" test "$accepted" -eq "$COUNT"
check "every accepted message was delivered ($delivered of $accepted)" test "$delivered" -eq "$accepted"
check "nothing lost" test "$lost" -eq 0
check "nothing duplicated" test "$dups" -eq 0
check "every message that policy requires to be signed is signed and verifies" test "$unsigned" -eq 0
e2e_summary
