#!/bin/bash
# Runs every end-to-end test (tests/e2e/test_*.sh) against a private Postfix
# and records the counts each one prints ("N passed, M failed").
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
export BUILD=$B
PKI="$PWD/$B/pki"
export PKI
tests/pki/gen-pki.sh "$PKI" >/dev/null || exit 1
tp=0
tf=0
for t in tests/e2e/test_*.sh; do
	echo "== $t"
	out=$(bash "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
	p=${last%% passed*}
	f=${last#*, }
	f=${f%% failed*}
	if [ -z "$last" ]; then
		p=0
		f=1
		echo "e2e: $t printed no result line"
	elif [ $rc -ne 0 ] && [ "$f" = 0 ]; then
		f=1
		echo "e2e: $t exited $rc"
	fi
	tp=$((tp + p))
	tf=$((tf + f))
done
echo "e2e $tp $tf" >>"$B/results.txt"
echo "e2e tests: $tp passed, $tf failed"
[ "$tf" = 0 ]
