# tests/cli/lib.sh - shared set-up of the segelctl test scripts (sourced).
#   cli_init NAME   cd to the repository, set B, CTL, PKI, a work directory W
#                   (searchable by the keystore's owner) removed on exit,
#                   and generate the test PKI
#   t DESC RC PATTERN CMD...   run CMD; pass when it exits RC and its output
#                   (stdout+stderr) matches the grep PATTERN
#   cli_done SUITE  record the counts and print "N passed, M failed"
cli_init() {
	cd "$(dirname "$0")/../.." || exit 1
	B=${BUILD:-build}
	CTL=$B/segelctl
	PKI="$PWD/$B/pki"
	W=$(mktemp -d "/tmp/segel-$1.XXXXXX")
	chmod 755 "$W"
	trap 'rm -rf "$W"' EXIT
	pass=0
	fail=0
	tests/pki/gen-pki.sh "$PKI" >/dev/null || exit 1
}

t() {
	local d=$1 want=$2 pat=$3 out rc
	shift 3
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ] && printf '%s' "$out" | grep -q -- "$pat"; then
		pass=$((pass + 1))
		echo "ok   - $d"
	else
		fail=$((fail + 1))
		echo "FAIL - $d (rc=$rc: $out)"
	fi
}

cli_done() {
	echo "$1 $pass $fail" >>"$B/results.txt"
	echo "$1 tests: $pass passed, $fail failed"
	[ "$fail" = 0 ]
}
