#!/bin/bash
# Certificate validation and revocation through segelctl, against the
# generated test PKI, a real HTTP server for CRLs and `openssl ocsp` as
# the OCSP responder (both on loopback, at the URLs the certificates name).
# Each refusal must carry its own reason, as signer and as recipient.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
CTL=$B/segelctl
PKI="$PWD/$B/pki"
W=$(mktemp -d /tmp/segel-pki.XXXXXX)
chmod 755 "$W" # the keystore owner (segel) must reach it
pass=0
fail=0
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
tests/pki/gen-pki.sh "$PKI" >/dev/null || exit 1

expect() { # description, want-token, command...
	local d=$1 want=$2 out
	shift 2
	out=$("$@" 2>&1)
	if printf '%s' "$out" | grep -q ": $want ("; then
		pass=$((pass + 1))
		echo "ok   - $d: $want"
	else
		fail=$((fail + 1))
		echo "FAIL - $d: want $want, got: $out"
	fi
}

init() { # dir
	"$CTL" init --dir "$1" --domain kota.go.id --domain '*.kota.go.id' >/dev/null
	"$CTL" -c "$1/segel.conf" trust add "$PKI/ca.pem" >/dev/null
}

# servers: CRL over HTTP on 18080, OCSP on 18081 (as the certificates say)
mkdir -p "$W/www"
openssl crl -in "$PKI/sub-ca.crl.pem" -outform DER -out "$W/www/sub-ca.crl"
start_http() {
	python3 -m http.server 18080 --bind 127.0.0.1 --directory "$W/www" >/dev/null 2>&1 &
	HTTP=$!
	PIDS+=("$HTTP")
}
start_ocsp() {
	openssl ocsp -index "$PKI/sub-ca.index.txt" -port 18081 -rsigner "$PKI/sub-ca.pem" \
		-rkey "$PKI/sub-ca.key" -CA "$PKI/sub-ca.pem" -nmin 60 -ignore_err >"$W/ocsp.log" 2>&1 &
	OCSP=$!
	PIDS+=("$OCSP")
}
wait_port() { for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# 1. validation refusals, as signer and as recipient, with the CRL servable
start_http
wait_port 18080
init "$W/a"
C="$W/a/segel.conf"
"$CTL" -c "$C" cert import "$PKI/sub-ca.pem" >/dev/null
for use in sign encrypt; do
	expect "alice ($use)" ok "$CTL" -c "$C" cert check "$PKI/alice.pem" --use "$use" --address alice@kota.go.id
	expect "expired ($use)" expired "$CTL" -c "$C" cert check "$PKI/expired.pem" --use "$use" --address expired@kota.go.id
	expect "not yet valid ($use)" not-yet-valid "$CTL" -c "$C" cert check "$PKI/notyet.pem" --use "$use" --address notyet@kota.go.id
	expect "serverAuth only ($use)" eku "$CTL" -c "$C" cert check "$PKI/serveronly.pem" --use "$use" --address serveronly@kota.go.id
	expect "address not in SAN ($use)" address-not-in-certificate "$CTL" -c "$C" cert check "$PKI/nosan.pem" --use "$use" --address nosan@kota.go.id
	expect "RSA-1024 ($use)" weak-key "$CTL" -c "$C" cert check "$PKI/rsa1024.pem" --use "$use" --address rsa1024@kota.go.id
	expect "revoked by CRL ($use)" revoked "$CTL" -c "$C" cert check "$PKI/revoked.pem" --use "$use" --address revoked@kota.go.id
done
# SmtpUTF8Mailbox (otherName) in subjectAltName counts as the address
openssl req -new -newkey rsa:2048 -nodes -keyout "$W/u8.key" -subj "/CN=UTF8 User" -out "$W/u8.csr" 2>/dev/null
printf 'subjectAltName=otherName:1.3.6.1.5.5.7.8.9;UTF8:pengguna@kota.go.id\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n' >"$W/u8.ext"
openssl x509 -req -in "$W/u8.csr" -CA "$PKI/sub-ca.pem" -CAkey "$PKI/sub-ca.key" -set_serial 4242 \
	-days 30 -sha256 -extfile "$W/u8.ext" -out "$W/u8.pem" 2>/dev/null
expect "SmtpUTF8Mailbox address (sign)" ok "$CTL" -c "$C" cert check "$W/u8.pem" --use sign --address pengguna@kota.go.id
expect "SmtpUTF8Mailbox, other address (sign)" address-not-in-certificate "$CTL" -c "$C" cert check "$W/u8.pem" --use sign --address other@kota.go.id
# untrusted root: the other root is known (not as an anchor)
"$CTL" -c "$C" cert import "$PKI/other-ca.pem" >/dev/null
for use in sign encrypt; do
	expect "untrusted root ($use)" untrusted-root "$CTL" -c "$C" cert check "$PKI/untrusted.pem" --use "$use" --address untrusted@kota.go.id
done
# missing intermediate: a store that has only the root
init "$W/b"
for use in sign encrypt; do
	expect "missing intermediate ($use)" no-issuer "$CTL" -c "$W/b/segel.conf" cert check "$PKI/alice.pem" --use "$use" --address alice@kota.go.id
done
kill "$HTTP"
wait "$HTTP" 2>/dev/null

# 2. revoked by OCSP: no CRL server, only the responder
start_ocsp
wait_port 18081
init "$W/c"
C="$W/c/segel.conf"
"$CTL" -c "$C" cert import "$PKI/sub-ca.pem" >/dev/null
for use in sign encrypt; do
	expect "revoked by OCSP ($use)" revoked "$CTL" -c "$C" cert check "$PKI/revoked.pem" --use "$use" --address revoked@kota.go.id
	expect "good by OCSP ($use)" ok "$CTL" -c "$C" cert check "$PKI/alice.pem" --use "$use" --address alice@kota.go.id
done
out=$("$CTL" -c "$C" revocation check "$PKI/revoked.pem" --no-fetch 2>&1)
if printf '%s' "$out" | grep -q "revoked on .* (OCSP)"; then
	pass=$((pass + 1)); echo "ok   - the OCSP answer is cached"
else
	fail=$((fail + 1)); echo "FAIL - the OCSP answer is cached: $out"
fi
kill "$OCSP"
wait "$OCSP" 2>/dev/null

# 3. nothing reachable: signing is fail-closed, encryption proceeds
init "$W/d"
C="$W/d/segel.conf"
"$CTL" -c "$C" cert import "$PKI/sub-ca.pem" >/dev/null
expect "responder down (sign)" revocation-unknown "$CTL" -c "$C" cert check "$PKI/alice.pem" --use sign --address alice@kota.go.id
expect "responder down (encrypt)" ok "$CTL" -c "$C" cert check "$PKI/alice.pem" --use encrypt --address alice@kota.go.id

echo "pki $pass $fail" >>"$B/results.txt"
echo "pki tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
