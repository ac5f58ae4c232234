#!/bin/bash
# Harvesting: the certificate of a signer whose signature verifies against
# a trust anchor is stored (with its SMIMECapabilities and the validated
# intermediates); nothing unverified is ever stored.
set -u
. "$(dirname "$0")/lib.sh"
cli_init harvest
count() { sqlite3 "$W/h/data/keystore.db" "select count(*) from certs where $1"; }

# a message signed by Segel for alice, in another keystore
"$CTL" init --dir "$W/s" --domain kota.go.id >/dev/null
"$CTL" -c "$W/s/segel.conf" trust add "$PKI/ca.pem" >/dev/null
"$CTL" -c "$W/s/segel.conf" keystore import "$PKI/alice.p12" --passphrase-file "$PKI/alice.pass" >/dev/null
printf 'From: alice@kota.go.id\r\nTo: carol@partner.example\r\nSubject: h\r\n\r\nhalo\r\n' >"$W/m.eml"
"$CTL" -c "$W/s/segel.conf" sign --as alice@kota.go.id "$W/m.eml" "$W/good.eml"
sed 's/halo/HALO/' "$W/good.eml" >"$W/tampered.eml"
# signed with other tools: an untrusted root, an expired certificate
printf 'Content-Type: text/plain\r\n\r\nx\r\n' >"$W/c.txt"
openssl cms -sign -signer "$PKI/untrusted.pem" -inkey "$PKI/untrusted.key" -certfile "$PKI/other-ca.pem" \
	-in "$W/c.txt" -out "$W/untrusted.eml" 2>/dev/null
openssl cms -sign -signer "$PKI/expired.pem" -inkey "$PKI/expired.key" -certfile "$PKI/sub-ca.pem" \
	-in "$W/c.txt" -out "$W/expired.eml" 2>/dev/null

# the harvesting keystore trusts only the root
"$CTL" init --dir "$W/h" --domain partner.example >/dev/null
H="$W/h/segel.conf"
"$CTL" -c "$H" trust add "$PKI/ca.pem" >/dev/null
t "tampered message: refused" 3 "refused: .*signature does not verify" "$CTL" -c "$H" cert harvest "$W/tampered.eml"
t "untrusted root: refused" 3 "refused" "$CTL" -c "$H" cert harvest "$W/untrusted.eml"
t "expired signer: refused" 3 "refused" "$CTL" -c "$H" cert harvest "$W/expired.eml"
t "nothing unverified was stored" 0 "^1$" count "1"
t "verified signature: alice's certificate stored" 0 "stored the certificate of alice@kota.go.id with its S/MIME capabilities" "$CTL" -c "$H" cert harvest "$W/good.eml"
t "stored as a harvested correspondent with capabilities" 0 "^1$" count "role='correspondent' and source='harvested' and smime_caps is not null"
t "the validated intermediate is stored too" 0 "^1$" count "role='intermediate'"
t "the harvested certificate is usable for encryption" 0 "usable for encryption" "$CTL" -c "$H" cert check "$PKI/alice.pem" --use encrypt --address alice@kota.go.id

cli_done harvest
