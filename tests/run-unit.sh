#!/bin/sh
# Runs the cmocka unit tests: tests/run-unit.sh BUILDDIR TEST...
# The test PKI is generated once into BUILDDIR/pki (tests/pki/gen-pki.sh).
set -u
B=$1
shift
SEGEL_PKI="$PWD/$B/pki"
export SEGEL_PKI
tests/pki/gen-pki.sh "$SEGEL_PKI" >/dev/null || exit 1
pass=0
fail=0
for t in "$@"; do
	if "$t"; then
		pass=$((pass + 1))
	else
		echo "unit: FAILED: $t"
		fail=$((fail + 1))
	fi
done
echo "unit $pass $fail" >>"$B/results.txt"
echo "unit test programs: $pass passed, $fail failed"
[ "$fail" = 0 ]
