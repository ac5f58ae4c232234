#!/bin/bash
# Milter-level tests: the real segel-milter binary driven by build/mtc, our
# milter-protocol client, without an MTA.  Each check prints ok/FAIL and the
# run ends with "N passed, M failed".
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
MTC=$B/mtc
CTL=$B/segelctl
MILTER=$B/segel-milter
# VALGRIND=1: the milter (all its processes) runs under memcheck; any error
# it reports fails the run.  The 4 MB message and the memory scans are
# skipped there (too slow, and the scan needs the real allocator).
if [ -n "${VALGRIND:-}" ]; then
	VG="valgrind --trace-children=yes --error-exitcode=99 --num-callers=20"
	WAIT=600
else
	VG=""
	WAIT=50
fi
PORT=${SEGEL_TEST_MILTER_PORT:-10951}
SOCK="inet:$PORT@127.0.0.1"
W=$(mktemp -d /tmp/segel-mt.XXXXXX)
chmod 755 "$W"
PKI="$PWD/$B/pki"
pass=0
fail=0
SUP=""

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { # description, command...
	local d=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}

cleanup() {
	[ -n "$SUP" ] && kill "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

tests/pki/gen-pki.sh "$PKI" >/dev/null || exit 1

# --- configuration checks (-n) ---------------------------------------------
"$CTL" init --dir "$W/cfg" --domain kota.go.id --domain '*.kota.go.id' >/dev/null
CONF=$W/cfg/segel.conf
check "segel-milter -n accepts the init configuration" "$MILTER" -n -c "$CONF"
sed 's/^  mode = "always";/  mode = "always";\n  colour = "blue";/' "$CONF" >"$W/bad.conf"
out=$("$MILTER" -n -c "$W/bad.conf" 2>&1)
rc=$?
line=$(grep -n colour "$W/bad.conf" | cut -d: -f1)
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "bad.conf:$line: unknown setting \"signing.colour\""; then
	ok "segel-milter -n rejects an unknown key with file:line"
else
	bad "segel-milter -n rejects an unknown key with file:line (rc=$rc: $out)"
fi
sed 's/max_mime_depth = .*//' "$CONF" >"$W/bad2.conf"
printf 'limits: { max_mime_depth = 61; };\n' >>"$W/bad2.conf"
out=$("$MILTER" -n -c "$W/bad2.conf" 2>&1)
if [ $? -ne 0 ] && printf '%s' "$out" | grep -q "out of bounds"; then
	ok "segel-milter -n rejects a value out of bounds"
else
	bad "segel-milter -n rejects a value out of bounds ($out)"
fi

# --- keystore ---------------------------------------------------------------
"$CTL" -c "$CONF" trust add "$PKI/ca.pem" >/dev/null
for u in alice bob dave revoked walikota; do
	"$CTL" -c "$CONF" keystore import "$PKI/$u.p12" --passphrase-file "$PKI/$u.pass" >/dev/null ||
		bad "import $u.p12"
done
# a current CRL in the store: the signing certificates have a known, good status
check "a CRL signed by the intermediate is imported" "$CTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem"
check "keystore list --json names alice" sh -c "'$CTL' -c '$CONF' keystore list --json | grep -q alice@kota.go.id"

# --- running milter ---------------------------------------------------------
start_milter() {
	local before
	before=$(grep -c "worker ready" "$W/milter.log" 2>/dev/null || true)
	$VG ${VG:+--log-file=$W/vg.%p.log} "$MILTER" -f -c "$CONF" -p "$SOCK" 2>>"$W/milter.log" &
	SUP=$!
	for _ in $(seq $WAIT); do
		[ "$(grep -c "worker ready" "$W/milter.log" 2>/dev/null)" -gt "${before:-0}" ] && return 0
		sleep 0.1
	done
	echo "milter did not start:"
	cat "$W/milter.log"
	return 1
}
# the worker is the child listening on the milter socket; the signer, the other
worker_pid() { ss -ltnpH "sport = :$PORT" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }
signer_pid() { pgrep -P "$SUP" | grep -vx "$(worker_pid)" | head -1; }
start_milter || exit 1

msg() { # file from [extra header]
	printf 'From: %s\r\nTo: carol@partner.example\r\nSubject: test\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSurat edaran \xe2\x80\x94 rapat Senin.\r\n' "$2" "${3:-}" >"$1"
}
mtc() { "$MTC" -s "$SOCK" "$@"; }
verifies() { openssl cms -verify -CAfile "$PKI/ca.pem" -in "$1" -out /dev/null 2>/dev/null; }
signed() { grep -qi '^Content-Type: multipart/signed' "$1" && verifies "$1"; }

msg "$W/a.eml" alice@kota.go.id
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/a.out" "$W/a.eml" >"$W/a.res"
check "authenticated owner: signed, verifies with openssl cms" signed "$W/a.out"
check "signed output is 7-bit clean" sh -c "! LC_ALL=C grep -q '[^[:print:][:space:]]' '$W/a.out'"

mtc -f alice@kota.go.id -r carol@partner.example -o "$W/u.out" "$W/a.eml" >"$W/u.res"
check "unauthenticated: not signed" sh -c "! grep -qi multipart/signed '$W/u.out'"
check "unauthenticated: logged with its reason" grep -q "result=unsigned reason=unauthenticated" "$W/milter.log"

mtc -a dave@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/d.out" "$W/a.eml" >/dev/null
check "login that does not own From: not signed" sh -c "! grep -qi multipart/signed '$W/d.out'"

msg "$W/x.eml" alice@kota.go.id "X-Skip-Signing: yes\r\n"
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/x.out" "$W/x.eml" >/dev/null
check "X-Skip-Signing does not stop signing" signed "$W/x.out"

printf 'From: alice@kota.go.id\r\nTo: carol@partner.example\r\nSubject: bad\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n' >"$W/m.eml"
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example "$W/m.eml" >"$W/m.res"
check "malformed MIME: rejected with 5.6.0 (signing.on_malformed = reject)" grep -q "5.6.0" "$W/m.res"
check "malformed MIME: a clear log line" grep -q "cannot sign: malformed MIME: unparsable Content-Type" "$W/milter.log"
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/a2.out" "$W/a.eml" >/dev/null
check "after a malformed message the next one is signed" signed "$W/a2.out"

# revocation before signing (R5): a revoked certificate is never used
msg "$W/rv.eml" revoked@kota.go.id
mtc -a revoked@kota.go.id -f revoked@kota.go.id -r carol@partner.example -o "$W/rv.out" "$W/rv.eml" >/dev/null
check "revoked signing certificate: not signed" sh -c "! grep -qi multipart/signed '$W/rv.out'"
check "revoked signing certificate: logged as an incident with the date" grep -q "incident=signing-certificate-revoked address=revoked@kota.go.id certificate revoked on" "$W/milter.log"
# status unknown (no CRL, no responder): fail-closed, the message is deferred
sqlite3 "$W/cfg/data/keystore.db" "DELETE FROM crls"
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example "$W/a.eml" >"$W/unk.res"
check "revocation unknown: tempfail 451 (fail-closed)" grep -q "code=451" "$W/unk.res"
check "revocation unknown: logged as an incident" grep -q "incident=revocation-unknown address=alice@kota.go.id" "$W/milter.log"
"$CTL" -c "$CONF" crl import "$PKI/sub-ca.crl.pem" >/dev/null

# large message: goes through the spool file, still verifies
{
	printf 'From: bob@dinas.kota.go.id\r\nTo: carol@partner.example\r\nSubject: big\r\n\r\n'
	head -c 3000000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
} >"$W/big.eml"
if [ -z "$VG" ]; then
	mtc -a bob@dinas.kota.go.id -f bob@dinas.kota.go.id -r carol@partner.example -o "$W/big.out" "$W/big.eml" >/dev/null
	check "4 MB message from bob (ECDSA): signed and verifies" signed "$W/big.out"
fi

# privilege drop
if [ "$(id -u)" = 0 ] && getent passwd segel >/dev/null; then
	wuid=$(awk '/^Uid:/{print $2}' "/proc/$(worker_pid)/status")
	check "worker runs as the segel user (uid $wuid)" test "$wuid" = "$(id -u segel)"
fi

# spool disk full: the message is deferred (4xx), never lost or passed unsigned
if [ -z "$VG" ] && [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k,mode=0700 tmpfs "$W/cfg/spool" 2>/dev/null; then
	getent passwd segel >/dev/null && chown segel "$W/cfg/spool"
	{
		printf 'From: alice@kota.go.id\r\nTo: carol@partner.example\r\nSubject: full\r\n\r\n'
		head -c 1500000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
	} >"$W/full.eml"
	mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example "$W/full.eml" >"$W/full.res"
	check "spool disk full: tempfail (451)" grep -q "code=451" "$W/full.res"
	check "spool disk full: a clear log line" grep -q "internal-error.*cannot store the message: system error" "$W/milter.log"
	umount "$W/cfg/spool"
	mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/full2.out" "$W/a.eml" >/dev/null
	check "after the disk has room again, mail is signed" signed "$W/full2.out"
fi

# corrupt keystore: tempfail with a clear log line
if [ -z "$VG" ]; then
	# corrupt keystore: a page of garbage in the middle of the file
	cp "$W/cfg/data/keystore.db" "$W/keystore.good"
	dd if=/dev/urandom of="$W/cfg/data/keystore.db" bs=4096 seek=1 count=64 conv=notrunc 2>/dev/null
	msg "$W/wk.eml" walikota@kota.go.id
	mtc -a walikota@kota.go.id -f walikota@kota.go.id -r carol@partner.example "$W/wk.eml" >"$W/corrupt.res"
	check "keystore corrupt: tempfail (451)" grep -q "code=451" "$W/corrupt.res"
	check "keystore corrupt: a clear log line" grep -q "result=tempfail reason=internal-error from=walikota@kota.go.id.*keystore" "$W/milter.log"
	cp "$W/keystore.good" "$W/cfg/data/keystore.db"
fi

# key custody: the worker cannot open the keystore and holds no key
if [ -z "$VG" ] && [ "$(id -u)" = 0 ] && getent passwd segel >/dev/null; then
	# alice signs now, so her key is loaded in the signer (the positive control)
	mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/k.out" "$W/a.eml" >/dev/null
	check "alice signs (key custody set-up)" signed "$W/k.out"
	check "the worker's user cannot open the keystore" sh -c "! runuser -u segel -- sqlite3 '$W/cfg/data/keystore.db' 'select count(*) from keys'"
	check "alice's private key is in the signer's memory (the search works)" tests/milter/findkey.py "$(signer_pid)" "$PKI/alice.key"
	wp=$(worker_pid)
	sp=$(signer_pid)
	check "worker ($wp) and signer ($sp) are two processes" test -n "$wp" -a -n "$sp" -a "$wp" != "$sp"
	tests/milter/findkey.py "$wp" "$PKI/alice.key"
	check "alice's private key is not in the worker's memory" test $? = 1
fi

# SIGHUP: a valid change applies, a broken file is refused
sed -i 's/on_unauthorized = "deliver"/on_unauthorized = "reject"/' "$CONF"
kill -HUP "$SUP"
for _ in $(seq $WAIT); do grep -q "reload: configuration" "$W/milter.log" && break; sleep 0.1; done
mtc -a dave@kota.go.id -f alice@kota.go.id -r carol@partner.example "$W/a.eml" >"$W/r.res"
check "after SIGHUP, on_unauthorized = reject applies (5.7.1)" grep -q "5.7.1" "$W/r.res"
printf 'nonsense here\n' >>"$CONF"
kill -HUP "$SUP"
for _ in $(seq $WAIT); do grep -q "reload refused" "$W/milter.log" && break; sleep 0.1; done
check "a broken configuration on SIGHUP is refused with file:line" grep -q "reload refused: .*segel.conf:[0-9]*:" "$W/milter.log"
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/a3.out" "$W/a.eml" >/dev/null
check "the running configuration stays after a refused reload" signed "$W/a3.out"

# the worker dies: the supervisor restarts it
old=$(worker_pid)
kill -9 "$old"
for _ in $(seq $WAIT); do
	new=$(worker_pid)
	[ -n "$new" ] && [ "$new" != "$old" ] && grep -c "worker ready" "$W/milter.log" | grep -qv '^1$' && break
	sleep 0.1
done
sleep 0.3
mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example -o "$W/a4.out" "$W/a.eml" >/dev/null
check "after kill -9 of the worker, the supervisor restarts it and mail is signed" signed "$W/a4.out"

# unsafe keystore permissions are refused at start-up, with a clear message
kill "$SUP" 2>/dev/null
wait "$SUP" 2>/dev/null
SUP=""
if [ -n "$VG" ]; then
	sleep 2
	bad_logs=$(grep -l "ERROR SUMMARY: [1-9]" "$W"/vg.*.log 2>/dev/null || true)
	check "valgrind: no memory errors in any milter process ($(ls "$W"/vg.*.log | wc -l) logs)" test -z "$bad_logs"
	for f in $bad_logs; do sed -n '/Invalid\|uninitialised\|Mismatched/,+12p' "$f" | head -40; done
fi
refused_start() { # description, pattern
	local out rc
	out=$(timeout 30 "$MILTER" -f -c "$CONF" -p "inet:$((PORT + 1))@127.0.0.1" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && printf '%s' "$out" | grep -q "$2"; then
		ok "$1"
	else
		bad "$1 (rc=$rc: $(printf '%s' "$out" | tail -2))"
	fi
}
sed -i '/nonsense here/d' "$CONF"
# keystore locked: the master passphrase no longer opens the keys
if [ -z "$VG" ]; then
	cp "$W/cfg/master.key" "$W/master.good"
	printf 'not-the-master-passphrase\n' >"$W/cfg/master.key"
	start_milter
	mtc -a alice@kota.go.id -f alice@kota.go.id -r carol@partner.example "$W/a.eml" >"$W/lock.res"
	check "keystore locked (wrong master passphrase): tempfail (451)" grep -q "code=451" "$W/lock.res"
	check "keystore locked: a clear log line" grep -q "result=tempfail reason=internal-error from=alice@kota.go.id.*master passphrase does not open the key of alice@kota.go.id" "$W/milter.log"
	kill "$SUP" 2>/dev/null
	wait "$SUP" 2>/dev/null
	SUP=""
	cp "$W/master.good" "$W/cfg/master.key"
fi
chmod 644 "$W/cfg/data/keystore.db"
refused_start "keystore file mode 0644: start-up refused" "keystore.db: mode 0644 .*must be owned by this user or root with mode 0600"
chmod 600 "$W/cfg/data/keystore.db"
chmod 777 "$W/cfg/data"
refused_start "keystore in a world-writable directory: start-up refused" "data: directory above .*keystore.db may be changed by others"
chmod 700 "$W/cfg/data"

echo "milter $pass $fail" >>"$B/results.txt"
echo "milter tests: $pass passed, $fail failed"
[ "$fail" = 0 ]
