#!/bin/sh
# Checks that the programs are built hardened: PIE, full RELRO (BIND_NOW),
# non-executable stack, stack protector and FORTIFY_SOURCE in use.
set -u
B=${1:-build}
pass=0
fail=0
t() { if eval "$2"; then pass=$((pass + 1)); echo "ok   - $1"; else fail=$((fail + 1)); echo "FAIL - $1"; fi; }
for p in "$B/segel-milter" "$B/segelctl"; do
	t "$p is PIE" "readelf -h '$p' | grep -q 'Type:.*DYN'"
	t "$p has full RELRO" "readelf -lW '$p' | grep -q GNU_RELRO && readelf -dW '$p' | grep -q 'BIND_NOW\|FLAGS.*NOW'"
	t "$p has a non-executable stack" "readelf -lW '$p' | grep GNU_STACK | grep -qv RWE"
	t "$p uses the stack protector" "nm -D '$p' | grep -q __stack_chk_fail"
	t "$p uses FORTIFY_SOURCE" "nm -D '$p' | grep -q '_chk@'"
done
echo "hardening $pass $fail" >>"$B/results.txt"
echo "hardening: $pass passed, $fail failed"
[ "$fail" = 0 ]
