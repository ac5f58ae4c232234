#!/bin/bash
# make fuzz: builds each libFuzzer harness with clang (ASan+UBSan) and runs
# it for FUZZ_SECONDS (default 60) on a seed corpus made from the test
# messages.  Crashes are saved under build-fuzz/crashes/; each one found
# must become a named regression test in tests/fuzz/regress/.
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-60}
F=build-fuzz
mkdir -p "$F/crashes"
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0"
make --no-print-directory -s CC=clang SANITIZE=1 B="$F" EXTRA_CFLAGS="-fsanitize=fuzzer-no-link" \
	"$F/libsegel.a" >/dev/null || exit 1
status=0
for h in tests/fuzz/fuzz_*.c; do
	name=$(basename "$h" .c)
	corpus="$F/corpus/$name"
	mkdir -p "$corpus"
	case $name in
	fuzz_config) cp tests/fuzz/corpus/config/* conf/segel.conf "$corpus/" 2>/dev/null ;;
	fuzz_verify)
		# seeds: real signed, tampered and malformed messages from three tools
		if [ ! -f "$F/corpus-verify/manifest.txt" ]; then
			tests/pki/gen-pki.sh "$F/pki" >/dev/null &&
				tests/corpus/gen-corpus.sh "$F/corpus-verify" "$F/pki" >/dev/null 2>&1
		fi
		cp "$F"/corpus-verify/*.eml tests/fuzz/corpus/mime/* "$corpus/" 2>/dev/null
		;;
	*) cp tests/fuzz/corpus/mime/* "$corpus/" 2>/dev/null ;;
	esac
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined \
		-o "$F/$name" "$h" "$F/libsegel.a" $(pkg-config --libs libconfig openssl libetpan sqlite3 |
			sed 's/-specs=[^ ]*//') -lmilter -lpthread || exit 1
	# regressions first: every saved crash input must now pass
	for r in tests/fuzz/regress/"$name"-*; do
		[ -f "$r" ] || continue
		"$F/$name" "$r" >/dev/null 2>&1 || { echo "fuzz: regression $r fails"; status=1; }
	done
	echo "fuzz: $name for ${SECS}s"
	"$F/$name" -max_total_time="$SECS" -max_len=65536 -artifact_prefix="$F/crashes/$name-" \
		-print_final_stats=1 "$corpus" 2>"$F/$name.log" || status=1
	grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$F/$name.log" | sed "s/^/  $name /"
	grep -E "^(==|SUMMARY)" "$F/$name.log" | head -5
done
[ $status = 0 ] && echo "fuzz: no crashes" || echo "fuzz: FAILURES, see $F/crashes"
exit $status
